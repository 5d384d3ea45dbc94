#!/usr/bin/env bash
# mirror.sh -- bench/run mirror: postlink-mirrord (capability 2) against the
# tools people run to copy a POP3 mailbox today, side by side in one run on
# the same private Dovecot mailbox (tests/harness/mirror.sh):
#   fetchmail   --keep --uidl, fastuidl 0, an MDA writing one file each
#   fetchmail   the same with fastuidl 1 (binary search with UIDL n)
#   getmail6    SimplePOP3Retriever, delete = false, read_all = false, Maildir
#   mpop        keep on, only_new on, delivery maildir
#   postlink    postlink-mirrord handing each copy to the harness Postfix
#               (SMTP, a durable queue, the mirror guard), pop3:// --plain
#               like the peers (no TLS on loopback)
#   postlink_push  postlink-mirrord with --deliver-to push: each copy
#               committed to the push store (capability 5) with its record,
#               one transaction; counted and checked for duplicates by a
#               device draining the store after each sync
# and, as the floor of postlink's first sync, Postfix alone accepting the
# same number of messages from bench/pl-smtp-load on the same listener.
# Phases, every tool on the same mailbox state:
#   first   N messages (default 5,000, about 30 MB), nothing known yet
#   incr    then 10 new and 10 taken (deleted on the primary)
#   kill    a fresh first sync of N_KILL messages killed with SIGKILL when
#           about half were delivered, then run again to the end:
#           duplicates at each tool's destination
#   big     the mailbox grown to N_BIG (default 10,000), each tool caught
#           up, then 1 new: the incremental sync's time and bytes
# Bytes are what Dovecot sent, from its own log (pop3_logout_format,
# bytes_out), never a tool's counter; \Seen is counted on the primary's
# maildir after each tool's first sync (and removed again for the next).
# The ideal bytes of an incremental sync are the new messages' sizes plus
# one UIDL listing of the mailbox.  Results: latest-mirror.{md,json}.
#
# usage: bench/run mirror [--n N] [--n-kill N] [--n-big N] [--smoke] [--out DIR] [--build-dir DIR]
set -u
SRC=$(cd "$(dirname "$0")/.." && pwd)
n=5000 n_kill=1000 n_big=10000 smoke=0 bdir="" OUT=""
while [ $# -gt 0 ]; do
    case $1 in
    --n) n=${2-}; shift ;;
    --n-kill) n_kill=${2-}; shift ;;
    --n-big) n_big=${2-}; shift ;;
    --smoke) smoke=1 ;;
    --build-dir) bdir=${2-}; shift ;;
    --out) OUT=${2-}; shift ;;
    *) echo "bench/run mirror: unknown option $1" >&2; exit 64 ;;
    esac
    shift
done
[ $smoke = 1 ] && n=40 n_kill=40 n_big=60
case "$n$n_kill$n_big" in '' | *[!0-9]*) echo "bench/run mirror: sizes are numbers" >&2; exit 64 ;; esac
[ "$n" -ge 20 ] && [ "$n_kill" -ge 10 ] && [ "$n_big" -gt "$n" ] ||
    { echo "bench/run mirror: need --n >= 20, --n-kill >= 10, --n-big > --n" >&2; exit 64; }

say() { printf 'bench: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (a private Postfix and Dovecot)"
for t in fetchmail getmail mpop; do command -v $t >/dev/null || die "$t not installed (scripts/install-deps.sh)"; done

# ---- the build -------------------------------------------------------------
PROGS="bench/pl-smtp-load tests/sink/postlink-sink"
. "$SRC/bench/build.sh"
bench_build $PROGS
bench_need $PROGS agents/mirror/postlink-mirrord milters/combined/postlink-milter ctl/postlinkctl \
    agents/push/postlink-pushd
make -s -C "$B" tests/tools/pl-push-client >/dev/null || die "cannot build pl-push-client"
[ -n "$OUT" ] || { if [ $smoke = 1 ]; then OUT=$(mktemp -d); else OUT=$SRC/bench/results; fi; }
mkdir -p "$OUT"

# ---- the harness -----------------------------------------------------------
H_USERS="alice bob pkill pbig"
. "$SRC/tests/harness/harness.sh"
. "$SRC/tests/harness/sync.sh"
. "$SRC/tests/harness/mirror.sh"
. "$SRC/tests/harness/push.sh"
h_init || exit 1
hm_setup || die "harness setup failed"
# IMAP access for postlink's withdrawals (as in tests/integration/t_mirror.sh)
HM_MASTER_PASS=master-$RANDOM$RANDOM
h_dovecot_master_user "$HM_MASTER_PASS"
HP_USERS=nobodypush       # no mail from Postfix to pushd here: the mirror writes the store
h_start_sink && h_start_dovecot && hm_mirror_setup && hs_setup && hp_wire && h_start_postfix &&
    hm_start_guard && hm_start_mirrord && hp_start_pushd || die "the harness did not start"
D=$H_DIR/bench
mkdir -p "$D"
PRIM=$(h__maildir "$HM_PRIM_USER")
RES=$D/results.tsv            # tool phase seconds bytes delivered extra
: >"$RES"
us() { echo "${EPOCHREALTIME/./}"; }
record() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RES"; }

# the primary's \Seen count, and removing it again (Dovecot picks renames up)
seen_count() { find "$PRIM/cur" -maxdepth 1 -type f -name '*:2,*S*' | grep -c .; }
unseen_all() {
    local f
    for f in "$PRIM"/cur/*:2,*S*; do
        [ -e "$f" ] || continue
        mv "$f" "${f%:2,*}:2,$(sed 's/S//g' <<<"${f##*:2,}")"
    done
}
# files in a tool's destination; Message-IDs seen more than once there
msgfiles() { find -L "$1" -type f \( -path '*/new/*' -o -path '*/cur/*' -o -name 'm.*' \) 2>/dev/null; }
nfiles() { msgfiles "$1" | grep -c .; }
dups_in() {
    msgfiles "$1" | tr '\n' '\0' |
        xargs -0r grep -h -i -m1 '^Message-ID:' | tr -d '\r' | sort | uniq -d -c |
        awk '{s += $1 - 1} END {print s + 0}'
}

# ---- the tools ---------------------------------------------------------------
# setup_TOOL DIR: its config in DIR, destination DIR/md; run_TOOL DIR runs one sync.
setup_fetchmail() {
    local d=$1 fast=$2
    mkdir -p "$d/md" && chmod 0700 "$d"
    printf '#!/bin/sh\nf=$(date +%%s.%%N).$$\ncat >"%s/md/.m.$f" && mv "%s/md/.m.$f" "%s/md/m.$f"\n' \
        "$d" "$d" "$d" >"$d/mda" && chmod 0755 "$d/mda"
    (umask 077; cat >"$d/rc" <<EOF
set no syslog
poll 127.0.0.1 protocol POP3 service $POSTLINK_POP3_PORT auth password timeout 60 uidl
  user "$HM_PRIM_USER" there with password "$HM_PRIM_PASS" is root here
  keep no rewrite fastuidl $fast sslproto '' mda "$d/mda"
EOF
    )
}
run_fetchmail() {
    FETCHMAILHOME=$1 FETCHMAILUSER=root HOME=$1 fetchmail -f "$1/rc" -i "$1/ids" --keep --uidl \
        --pidfile "$1/pid" --nosyslog </dev/null >>"$1/log" 2>&1
    local rc=$?; [ $rc = 0 ] || [ $rc = 1 ]      # 1: no new mail
}
setup_getmail() {
    local d=$1
    mkdir -p "$d/md/new" "$d/md/cur" "$d/md/tmp" && chmod 0700 "$d"
    (umask 077; cat >"$d/rc" <<EOF
[retriever]
type = SimplePOP3Retriever
server = 127.0.0.1
port = $POSTLINK_POP3_PORT
username = $HM_PRIM_USER
password = $HM_PRIM_PASS
# getmail6 6.18 sets its SIGCHLD handler after fork(): a delivery child
# that exits first leaves it waiting for the socket timeout (180 s)
timeout = 5
[destination]
type = Maildir
path = $d/md/
[options]
delete = false
read_all = false
verbose = 0
EOF
    )
    chown -R nobody "$d"
}
# getmail6 refuses to deliver as root: it runs as nobody
run_getmail() { runuser -u nobody -- getmail --getmaildir "$1" --rcfile "$1/rc" </dev/null >>"$1/log" 2>&1; }
setup_mpop() {
    local d=$1
    mkdir -p "$d/md/new" "$d/md/cur" "$d/md/tmp" && chmod 0700 "$d"
    (umask 077; cat >"$d/rc" <<EOF
defaults
tls off
account default
host 127.0.0.1
port $POSTLINK_POP3_PORT
user $HM_PRIM_USER
password $HM_PRIM_PASS
auth user
keep on
only_new on
uidls_file $d/uidls
delivery maildir $d/md
EOF
    )
}
run_mpop() { HOME=$1 mpop -C "$1/rc" -q </dev/null >>"$1/log" 2>&1; }
# postlink: an account USER, copies to USER's maildir through Postfix
setup_postlink() {
    local d=$1 u=$2
    mkdir -p "$d" && echo "$u" >"$d/user"
    ln -sfn "$(h__maildir "${u%@*}")" "$d/md"
    "$POSTLINKCTL" mirror del "$u" >/dev/null 2>&1
    "$POSTLINKCTL" mirror add "$u" --primary "pop3://127.0.0.1:$POSTLINK_POP3_PORT" --plain \
        --login "$HM_PRIM_USER" --secret-file "$HM_SECRET" --deliver-to "$u" --interval 0 >/dev/null
}
run_postlink() { "$POSTLINKCTL" mirror sync "$(cat "$1/user")" --wait 600 >>"$1/log" 2>&1; }
pl_handed() { grep -c "mirror $(cat "$1/user"): .* -> " "$H_SYNC/mirrord.log"; }

# postlink_push: the same account type delivering into the push store; a
# device (pl-push-client) drains it into DIR/md/new after each sync
setup_postlink_push() {
    local d=$1 u=$2
    mkdir -p "$d/md/new" && echo "$u" >"$d/user"
    "$POSTLINKCTL" mirror del "$u" >/dev/null 2>&1
    "$POSTLINKCTL" push device del "$u" phone >/dev/null 2>&1
    "$POSTLINKCTL" push device add "$u" phone 2>/dev/null | sed -n 's/^token: //p' >"$d/token"
    "$POSTLINKCTL" mirror add "$u" --primary "pop3://127.0.0.1:$POSTLINK_POP3_PORT" --plain \
        --login "$HM_PRIM_USER" --secret-file "$HM_SECRET" --deliver-to push --interval 0 >/dev/null
}
run_postlink_push() { run_postlink "$1"; }
push_drain() {
    "$B/tests/tools/pl-push-client" --url "$POSTLINK_PUSH_URL" --token-file "$1/token" \
        drain --dir "$1/md/new" --retry-for 30 >>"$1/drain.log" 2>&1
}

TOOLS="postlink postlink_push fetchmail fetchmail_fastuidl getmail mpop"
tool_run() {   # tool_run TOOL DIR
    case $1 in fetchmail_fastuidl) run_fetchmail "$2" ;; *) "run_$1" "$2" ;; esac
}
tool_setup() { # tool_setup TOOL DIR [POSTLINK-USER]
    case $1 in
    fetchmail) setup_fetchmail "$2" 0 ;;
    fetchmail_fastuidl) setup_fetchmail "$2" 1 ;;
    postlink) setup_postlink "$2" "$3" ;;
    postlink_push) setup_postlink_push "$2" "${3%@*}-push@${3#*@}" ;;
    *) "setup_$1" "$2" ;;
    esac
}
delivered() {  # delivered TOOL DIR: copies at its destination (postlink: in the queue or delivered)
    if [ "$1" = postlink ]; then hm_wait_queue_empty 300 >/dev/null 2>&1; fi
    if [ "$1" = postlink_push ]; then push_drain "$2"; fi
    nfiles "$2/md/"
}
# measure TOOL DIR PHASE: one sync, its seconds and the primary's bytes
measure() {
    local t=$1 d=$2 ph=$3 mark t0 t1 c rc
    mark=$(hm_log_mark)
    t0=$(us)
    tool_run "$t" "$d"; rc=$?
    t1=$(us)
    hm_wait_logouts "$mark" 1 >/dev/null 2>&1
    read -r -a c <<<"$(hm_pop3_bytes "$mark")"
    local bytes=${c[7]#bytes_out=} secs
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", (b - a) / 1e6}')
    [ $rc = 0 ] || say "$t $ph: exit status $rc (see $d/log)"
    record "$t" "$ph" "$secs" "$bytes" "$(delivered "$t" "$d")" "rc=$rc ${c[*]}"
    say "$t $ph: $secs s, $bytes bytes from the primary"
}

# ---- kill -9 in the middle of a first sync (on a mailbox of its own) -----------
# run first: afterwards its messages are deleted on the primary, and the
# other phases' tools start from nothing
say "kill phase: $n_kill messages"
hm_fill "$n_kill" 2000 14000 >/dev/null
for t in $TOOLS; do
    d=$D/kill-$t
    tool_setup "$t" "$d" "pkill@$POSTLINK_DOMAIN"
    tool_run "$t" "$d" &
    bg=$!
    end=$(( $(h__ms) + 300000 ))
    while :; do
        case $t in postlink*) got=$(pl_handed "$d") ;; *) got=$(nfiles "$d/md/") ;; esac
        [ "$got" -ge $((n_kill / 2)) ] && break
        [ "$(h__ms)" -ge $end ] && break
        h__alive "$bg" || break
        sleep 0.01
    done
    if [ "${t%_push}" = postlink ]; then
        kill -9 "$HM_MIRRORD_PID" 2>/dev/null
        kill "$bg" 2>/dev/null      # postlinkctl waiting for the sync
        wait "$bg" 2>/dev/null
        hm_start_mirrord >/dev/null || die "postlink-mirrord did not restart"
        # a process killed inside the store library can make the others exit
        # (75) for a fresh start that recovers; its supervisor restarts it
        h__alive "$HP_PUSHD_PID" || hp_start_pushd >/dev/null || die "postlink-pushd did not restart"
    else
        pkill -9 -f "$d/rc" 2>/dev/null
        wait "$bg" 2>/dev/null
        rm -f "$d/pid" 2>/dev/null
    fi
    before=$(delivered "$t" "$d")
    mark=$(hm_log_mark)
    tool_run "$t" "$d"
    hm_wait_logouts "$mark" 1 >/dev/null 2>&1
    read -r -a c <<<"$(hm_pop3_bytes "$mark")"
    after=$(delivered "$t" "$d")
    record "$t" kill 0 "${c[7]#bytes_out=}" "$after" "before=$before dups=$(dups_in "$d/md/") refetched=$(( ${c[1]#top=} + ${c[3]#retr=} ))"
    say "$t kill: $before delivered before the kill, $after after, $(dups_in "$d/md/") duplicates"
    unseen_all
done
rm -f "$PRIM"/cur/* "$PRIM"/new/*
: >"$H_DIR/hm-manifest"


# ---- phase 1: the first sync of N ---------------------------------------------
say "filling the primary with $n messages"
hm_fill "$n" 2000 14000 >/dev/null || die "hm_fill failed"
mb=$(awk '{s += $3} END {printf "%.1f", s / 1e6}' "$H_DIR/hm-manifest")
bash "$SRC/bench/msg.sh" 6000 bench@remote.test "bob@$POSTLINK_DOMAIN" >"$D/load.eml"
t0=$(us)
"$B/bench/pl-smtp-load" -s 1 -m "$n" -f bench@remote.test -t "bob@$POSTLINK_DOMAIN" -F "$D/load.eml" \
    "127.0.0.1:$HM_MIRROR_PORT" >/dev/null 2>&1 || say "pl-smtp-load failed"
t1=$(us)
hm_wait_queue_empty 600 >/dev/null 2>&1
record postfix_alone first "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", (b - a) / 1e6}')" 0 "$n" ""
for t in $TOOLS; do
    tool_setup "$t" "$D/$t" "alice@$POSTLINK_DOMAIN"
    measure "$t" "$D/$t" first
    record "$t" seen_after_first 0 0 "$(seen_count)" ""
    unseen_all
done

# ---- phase 2: 10 new, 10 taken ------------------------------------------------
hm_fill 10 2000 14000 >/dev/null
new_bytes=$(tail -n 10 "$H_DIR/hm-manifest" | awk '{s += $3} END {print s}')
ls "$PRIM"/cur/* "$PRIM"/new/* 2>/dev/null | sort | head -n 10 | xargs -r rm -f
listing=$(python3 -c 'import sys; n = int(sys.argv[1]); print(sum(len("%d " % i) + 16 + 2 for i in range(1, n + 1)) + 5 + 3)' "$n")
record ideal incr 0 $((new_bytes + listing)) 10 "new=$new_bytes listing=$listing"
for t in $TOOLS; do measure "$t" "$D/$t" incr; unseen_all; done

# ---- phase 4: the mailbox grown to N_BIG, then 1 new ---------------------------
now=$(find "$PRIM/cur" "$PRIM/new" -maxdepth 1 -type f | grep -c .)
hm_fill $((n_big - now)) 2000 14000 >/dev/null
for t in $TOOLS; do tool_run "$t" "$D/$t" >/dev/null 2>&1; unseen_all; done
hm_fill 1 2000 14000 >/dev/null
new1=$(tail -n 1 "$H_DIR/hm-manifest" | awk '{print $3}')
listing=$(python3 -c 'import sys; n = int(sys.argv[1]); print(sum(len("%d " % i) + 16 + 2 for i in range(1, n + 1)) + 5 + 3)' "$n_big")
record ideal big 0 $((new1 + listing)) 1 "new=$new1 listing=$listing"
for t in $TOOLS; do measure "$t" "$D/$t" big; unseen_all; done

python3 "$SRC/bench/mirror_report.py" "$RES" "$OUT" "$n" "$n_kill" "$n_big" "$mb" "$(nproc)" || die "report failed"
say "results: $OUT/latest-mirror.md"
