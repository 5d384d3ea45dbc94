#!/usr/bin/env bash
# t_postlinkctl.sh -- postlinkctl as an administrator uses it: init, status
# (text and JSON), db check/backup/recover, check-config with file:line
# errors, --help and the man pages -- while three writers keep writing.
set -u
. "${abs_top_srcdir:-.}/tests/integration/tap.sh"
B=${abs_top_builddir:-.}
CTL=$B/ctl/postlinkctl
W=$B/tests/unit/store_writer
T=$(mktemp -d /tmp/postlink-ctl.XXXXXX)
chmod 711 "$T"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$T"; }
trap cleanup EXIT

cat > "$T/postlink.conf" <<CF
# test configuration
db_home = $T/db
enabled_domains = postlink.test,
    example.org
db_checkpoint_interval = 5s
CF
export POSTLINK_CONF=$T/postlink.conf

out=$("$CTL" init 2>&1)
tap_check "init creates the store" grep -q "schema version" <<<"$out"
tap_check "init gives db_home to postlink_user" test "$(stat -c %U "$T/db")" = postlink

mkdir -p "$T/system" && echo keep >"$T/system/important"
out=$("$CTL" -o db_home="$T/system" init 2>&1); rc=$?
tap_check "init refuses to give a non-empty directory of another account to postlink_user" \
    sh -c "test $rc = 1 && test \"\$(stat -c %U '$T/system' '$T/system/important' | sort -u)\" = root && grep -q 'not changing its owner' <<'X'
$out
X"
mkdir -p "$T/empty"
"$CTL" -o db_home="$T/empty" init >/dev/null 2>&1; rc=$?
tap_check "init takes an empty directory made beforehand and gives it to postlink_user" \
    sh -c "test $rc = 0 && test \"\$(stat -c %U '$T/empty')\" = postlink"

# Writers run as the owner of db_home, as daemons would; so does the
# backup, whose target directory must be writable by postlink_user.
# (The build tree may sit where postlink cannot reach: copy the writer.)
install -d -o postlink -g postlink "$T/run" "$T/bk"
install -m 755 "$W" "$T/store_writer"
for id in 1 2 3; do
    runuser -u postlink -- "$T/store_writer" -h "$T/db" -i "$id" -t 60 -r "$T/run/w$id.report" 2>"$T/w$id.err" &
    pids+=($!)
done
sleep 1

out=$("$CTL" status 2>&1); rc=$?
tap_check "status works while writers run" test $rc = 0
tap_check "status shows a working synchronous write probe" grep -q "write probe:      ok" <<<"$out"
tap_check "status lists enabled_domains" grep -q "postlink.test example.org" <<<"$out"
json=$("$CTL" status --json 2>&1)
tap_check "status --json is valid JSON" jq_true . "$json"
tap_check "status --json counts the writers' records" \
    jq_true '.tables.probe > 10 and .schema_version >= 2 and .write_probe.ok' "$json"

out=$("$CTL" db check 2>&1); rc=$?
tap_check "db check verifies a hot backup while writers run" test $rc = 0
tap_check "db check says OK" grep -q "OK" <<<"$out"
json=$("$CTL" db check --json 2>/dev/null)
tap_check "db check --json" jq_true '.ok == true' "$json"

out=$("$CTL" db backup "$T/root-only" 2>&1); rc=$?
tap_check "db backup into a directory postlink cannot write says why" \
    sh -c "test $rc != 0 && grep -q 'Permission denied' <<'X'
$out
X"
"$CTL" db backup "$T/bk/copy" >"$T/backup.out" 2>&1; rc=$?
tap_check "db backup succeeds" test $rc = 0
tap_check "backup holds the tables" test -s "$T/bk/copy/probe.db" -a -s "$T/bk/copy/meta.db"
"$CTL" db backup "$T/bk/copy" >/dev/null 2>&1; rc=$?
tap_check "db backup refuses a non-empty directory" test $rc != 0

out=$("$CTL" db recover 2>&1); rc=$?
tap_check "db recover while writers run" test $rc = 0

before=$(cat "$T"/run/w*.report | wc -l); sleep 1; after=$(cat "$T"/run/w*.report | wc -l)
tap_check "writers kept committing ($before -> $after)" test "$after" -gt "$before"
for p in "${pids[@]}"; do kill "$p"; wait "$p" 2>/dev/null; done
pids=()
errs=$(cat "$T"/w*.err | grep -ci 'error\|fatal' || true)
[ "$errs" = 0 ] || tap_diag "$(cat "$T"/w*.err | grep -i 'error\|fatal' | head -5)"
tap_check "writers logged no errors" test "$errs" = 0

bk=$("$CTL" -o db_home="$T/bk/copy" status --json 2>/dev/null | jq -r '.tables.probe')
tap_check "the backup opens as a store on its own ($bk records)" test "${bk:-0}" -gt 10

out=$("$CTL" check-config 2>&1); rc=$?
tap_check "check-config accepts a good file" test $rc = 0
out=$("$CTL" check-config -n 2>/dev/null)
tap_check "check-config -n prints non-defaults" grep -q "^db_checkpoint_interval = 5s" <<<"$out"
cat > "$T/bad.conf" <<CF
db_home = $T/db

enabled_domain = example.com
db_lock_timeout = soon
CF
out=$("$CTL" -c "$T/bad.conf" check-config 2>&1); rc=$?
tap_check "check-config rejects a bad file" test $rc != 0
tap_check "unknown parameter named with file:line" grep -qF "$T/bad.conf:3: unknown parameter \"enabled_domain\"" <<<"$out"
tap_check "bad value named with file:line" grep -qF "$T/bad.conf:4: parameter db_lock_timeout" <<<"$out"
"$CTL" -c "$T/bad.conf" status >/dev/null 2>&1; rc=$?
tap_check "other commands refuse a broken configuration (exit 78)" test $rc = 78
out=$("$CTL" -c "$T/missing.conf" check-config 2>&1); rc=$?
tap_check "a named configuration file that is missing is an error (exit 78, names it)" \
    sh -c "test $rc = 78 && grep -qF '$T/missing.conf: cannot open' <<'X'
$out
X"
out=$(POSTLINK_CONF=$T/missing-env.conf "$CTL" status 2>&1); rc=$?
tap_check "so is a missing \$POSTLINK_CONF, for status too (exit 78, names it)" \
    sh -c "test $rc = 78 && grep -qF '$T/missing-env.conf: cannot open' <<'X'
$out
X"
# the build's default file (postlinkctl -h names it), missing on a test machine
def=$("$CTL" -h | sed -n 's/^.*else \(\/.*postlink\.conf\)\.$/\1/p')
if [ -n "$def" ] && [ ! -e "$def" ]; then
    out=$(env -u POSTLINK_CONF "$CTL" check-config 2>&1); rc=$?
    tap_check "check-config without the default file $def: exit 78 naming it, not \"OK\"" \
        sh -c "test $rc = 78 && grep -qF '$def: cannot open' <<'X'
$out
X
! grep -q 'configuration OK' <<'X'
$out
X"
    env -u POSTLINK_CONF "$CTL" device list >/dev/null 2>&1; rc=$?
    tap_check "device list without the default file: exit 78" test $rc = 78
else
    tap_diag "not checked: the default configuration file '$def' exists on this machine"
fi

out=$("$CTL" --help 2>&1); rc=$?
tap_check "--help lists the commands" grep -q "check-config" <<<"$out"
"$CTL" frobnicate >/dev/null 2>&1; rc=$?
tap_check "an unknown command is a usage error (exit 64)" test $rc = 64

man_out=$(MANWIDTH=80 man -l "${abs_top_srcdir:-.}/man/postlinkctl.8" 2>/dev/null | col -b)
tap_check "postlinkctl(8) renders and documents db check" grep -q "db check" <<<"$man_out"
man_out=$(MANWIDTH=80 man -l "${abs_top_srcdir:-.}/man/postlink.conf.5" 2>/dev/null | col -b)
missing=""
for p in db_home db_cache_size db_log_file_size db_checkpoint_interval db_lock_timeout \
         enabled_domains postlink_user syslog_name syslog_facility; do
    grep -q "$p" <<<"$man_out" || missing="$missing $p"
done
tap_check "postlink.conf(5) documents every parameter${missing:+ (missing:$missing)}" test -z "$missing"

mkdir -p "$T/rootdb"
out=$("$CTL" -o db_home="$T/rootdb" status 2>&1); rc=$?
tap_check "a db_home that belongs to root is refused (the daemons run as postlink_user): exit $rc" \
    sh -c "[ $rc = 1 ] && grep -q 'belongs to root' <<'EOF_'
$out
EOF_"
tap_check "... and postlinkctl created nothing in it" test -z "$(ls -A "$T/rootdb")"
tap_done
