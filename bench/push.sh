#!/usr/bin/env bash
# push.sh -- bench/run push: postlink-pushd's piggy-backed ack (capability
# 5) against draining the same messages from Dovecot, side by side in one
# run on loopback (tests/harness/push.sh):
#   postlink  tests/tools/pl-push-client drain (libcurl, one keep-alive
#             connection): get=first, then get=<next>&ack=<id> per message,
#             then the ack-only request -- N+1 requests for N
#   IMAP      per message UID FETCH BODY.PEEK[] + UID STORE \Deleted, then
#             EXPUNGE (bench/push_dovecot.py, imaplib)
#   POP3      per message RETR + DELE, then QUIT (poplib)
# Each client writes and fsyncs every message to a file before it
# acknowledges or deletes it.  The N messages (2-20 kB, the bench/msg.sh
# shape) go through the private Postfix once per round, to that round's
# push user and two Dovecot users (LMTP); the fill is not measured.  R
# rounds (default 3), the clients' order rotated in each: medians and
# ranges, latencies pooled over the rounds.  Then, R rounds again, DEVICES
# push users with PER_DEVICE messages each (filled before each round)
# drain at once (bench/pl-push-load: a thread per device): messages/s,
# latency p50/p99, 5xx, refused acks.  RSS of
# postlink-pushd (VmRSS/VmHWM in /proc/PID/status) idle after start, after
# the fill, and at its peak under that load (VmHWM reset before it).
# Results: latest-push.{md,json}.
#
# usage: bench/run push [--n N] [--rounds R] [--devices D] [--per-device K] [--smoke] [--out DIR] [--build-dir DIR]
set -u
SRC=$(cd "$(dirname "$0")/.." && pwd)
n=1000 rounds=3 devices=100 per_dev=20 smoke=0 bdir="" OUT=""
while [ $# -gt 0 ]; do
    case $1 in
    --n) n=${2-}; shift ;;
    --rounds) rounds=${2-}; shift ;;
    --devices) devices=${2-}; shift ;;
    --per-device) per_dev=${2-}; shift ;;
    --smoke) smoke=1 ;;
    --build-dir) bdir=${2-}; shift ;;
    --out) OUT=${2-}; shift ;;
    *) echo "bench/run push: unknown option $1" >&2; exit 64 ;;
    esac
    shift
done
[ $smoke = 1 ] && n=20 rounds=1 devices=3 per_dev=5
case "$n$rounds$devices$per_dev" in '' | *[!0-9]*) echo "bench/run push: sizes are numbers" >&2; exit 64 ;; esac
[ "$n" -ge 1 ] && [ "$rounds" -ge 1 ] && [ "$devices" -ge 1 ] && [ "$devices" -le 200 ] && [ "$per_dev" -ge 1 ] ||
    { echo "bench/run push: need --n >= 1, --rounds >= 1, 1 <= --devices <= 200, --per-device >= 1" >&2; exit 64; }

say() { printf 'bench: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (a private Postfix and Dovecot)"
command -v python3 >/dev/null || die "python3 not installed"

# ---- the build -------------------------------------------------------------
PROGS="tests/tools/pl-push-client bench/pl-push-load tests/sink/postlink-sink"
. "$SRC/bench/build.sh"
bench_build $PROGS
bench_need $PROGS agents/push/postlink-pushd ctl/postlinkctl
[ -n "$OUT" ] || { if [ $smoke = 1 ]; then OUT=$(mktemp -d); else OUT=$SRC/bench/results; fi; }
mkdir -p "$OUT"

# ---- the harness -----------------------------------------------------------
loadu=""
for i in $(seq -f '%03g' 1 "$devices"); do loadu="$loadu pd$i"; done
H_USERS="" HP_USERS=""
for r in $(seq 1 "$rounds"); do H_USERS="$H_USERS imapu$r popu$r"; HP_USERS="$HP_USERS pdev$r"; done
HP_USERS="$HP_USERS$loadu"
# every device connects from 127.0.0.1: the per-address limit (default 32,
# against one stranger taking every connection) would turn them away
HP_CONF_EXTRA="push_max_connections_per_ip = 0"
. "$SRC/tests/harness/harness.sh"
. "$SRC/tests/harness/sync.sh"
. "$SRC/tests/harness/push.sh"
h_init || exit 1
load0=$(cut -d' ' -f1-3 /proc/loadavg)
h_start_sink && h_start_dovecot && hp_setup && h_start_postfix && hp_start_pushd ||
    die "the harness did not start"
D=$H_DIR/bench DOM=$POSTLINK_DOMAIN
mkdir -p "$D"
RES=$D/results.kv               # key=value lines for push_report.py
: >"$RES"
put() { printf '%s=%s\n' "$1" "$2" >>"$RES"; }
us() { echo "${EPOCHREALTIME/./}"; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", (b - a) / 1e6}'; }
rss() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$HP_PUSHD_PID/status" 2>/dev/null; }
stored() { grep -c ': stored [0-9a-f]\{32\} ' "$H_SYNC/pushd.log"; }
# others: processes of other runs busy on the machine now: running or
# runnable (state R), other than this shell and kernel threads, or
# compiling (cc1); called between the phases, when this run's own servers
# are idle.  present: the servers of other postlink test harnesses, busy
# or not.
others() {
    local f s st a c=0 names=""
    for f in /proc/[0-9]*/stat; do
        [ "${f//[!0-9]/}" = "$BASHPID" ] && continue
        read -r s 2>/dev/null <"$f" || continue
        st=${s##*) }; st=${st%% *}
        case "$st ${s%%)*}" in "R "* | *"(cc1") ;; *) continue ;; esac
        read -r -d '' a 2>/dev/null <"${f%stat}cmdline"
        [ -n "$a" ] || continue             # kernel threads have no command line
        c=$((c + 1)) names="$names,${a##*/}"
    done
    echo "$c ${names#,}"
}
present() {
    local f a c=0
    for f in /proc/[0-9]*/cmdline; do
        a=$(tr '\0' ' ' 2>/dev/null <"$f") || continue
        case $a in *"$H_DIR"*) ;; *"/tmp/postlink-h."*) c=$((c + 1)) ;; esac
    done
    echo "$c"
}
most_others=0 most_names=""
note_others() {
    local o
    o=$(others)
    [ "${o%% *}" -gt "$most_others" ] && most_others=${o%% *} most_names=${o#* }
}
put n "$n"; put rounds "$rounds"; put devices "$devices"; put per_device "$per_dev"
put cores "$(nproc)"; put cpu "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1 | tr -s ' ')"
put loadavg_before "$load0"

# ---- devices, and pushd idle --------------------------------------------------
for u in $HP_USERS; do hp_device "$u@$DOM" phone || die "device $u/phone not added"; done
put rss_idle_kb "$(rss VmRSS)"; put hwm_idle_kb "$(rss VmHWM)"
say "postlink-pushd idle: $(rss VmRSS) kB"

# ---- the fill (not measured) ------------------------------------------------
bash "$SRC/bench/msg.sh" 20000 bench@remote.test "pdev@$DOM" >"$D/tmpl.eml" || die "msg.sh failed"
for r in $(seq 1 "$rounds"); do     # the same messages (seed 1) for every round
    say "filling: $n messages to pdev$r (push), imapu$r and popu$r (Dovecot)"
    f=$(python3 "$SRC/bench/push_fill.py" "$POSTLINK_SMTP_PORT" "$D/tmpl.eml" "$n" 2000 20000 1 \
        bench@remote.test "pdev$r@$DOM,imapu$r@$DOM,popu$r@$DOM") || die "the fill failed"
done
put fill_bytes "${f#*bytes=}"
hp_wait_stored $((rounds * n)) 600 || die "pushd did not store every message"
for r in $(seq 1 "$rounds"); do
    h_wait_maildir_files "imapu$r" "$n" 300 && h_wait_maildir_files "popu$r" "$n" 300 ||
        die "Dovecot did not get every message"
done
put rss_filled_kb "$(rss VmRSS)"; put hwm_filled_kb "$(rss VmHWM)"
n451() { grep -c 'answered 451' "$H_SYNC/pushd.log"; }
put lmtp_451_fill "$(n451)"

# ---- one device, N messages, R rounds -------------------------------------------
# drain_TOOL R: round R's drain by one client, its results into RES (_rR)
drain_postlink() {
    local r=$1 t0 t1 o=$D/pl-$1
    mkdir -p "$o"
    t0=$(us)
    hp_client "pdev$r@$DOM" phone --timing drain --dir "$o" >"$o.out" 2>"$o.err" ||
        say "pl-push-client failed (see $o.err)"
    t1=$(us)
    put "pl_seconds_r$r" "$(secs "$t0" "$t1")"
    put "pl_summary_r$r" "$(tail -n 1 "$o.out")"
    put "pl_files_r$r" "$(find "$o" -maxdepth 1 -name '*.eml' | grep -c .)"
    put "pl_status_r$r" "$(awk '/^status=/ {sub(/^status=/, "", $1); c[$1]++} END {for (s in c) printf "%s:%d,", s, c[s]}' "$o.out")"
    awk '/^status=/ { for (i = 1; i <= NF; i++) if ($i ~ /^us=/) print substr($i, 4) }' "$o.out" >"$o.lat"
    put "pl_left_r$r" "$("$POSTLINKCTL" push queue "pdev$r@$DOM" --json | jq '.messages | length')"
}
drain_dovecot() {
    local p=$1 r=$2 u port o=$D/$1-$2
    case $p in imap) u=imapu$r port=$POSTLINK_IMAP_PORT ;; pop3) u=popu$r port=$POSTLINK_POP3_PORT ;; esac
    mkdir -p "$o"
    python3 "$SRC/bench/push_dovecot.py" $p "$port" "$u@$DOM" "$(h_user_pass "$u")" "$o" "$o.lat" \
        >"$o.out" 2>"$o.err" || say "$p client failed (see $o.err)"
    put "${p}_summary_r$r" "$(tail -n 1 "$o.out")"
    put "${p}_files_r$r" "$(find "$o" -maxdepth 1 -name '*.eml' | grep -c .)"
    put "${p}_left_r$r" "$(h_count_maildir_files "$u")"
}
note_others
for r in $(seq 1 "$rounds"); do
    order="postlink imap pop3"
    for _ in $(seq 2 "$r"); do order="${order#* } ${order%% *}"; done    # rotated per round
    say "round $r of $rounds: one client each drains $n ($order)"
    for t in $order; do
        case $t in postlink) drain_postlink "$r" ;; *) drain_dovecot "$t" "$r" ;; esac
    done
done

# ---- DEVICES devices at once, R rounds ----------------------------------------------
rcpts=$(for u in $loadu; do printf '%s@%s,' "$u" "$DOM"; done)
toks=()
for u in $loadu; do toks+=("$H_DIR/token-$u@$DOM-phone"); done
for r in $(seq 1 "$rounds"); do
    say "round $r of $rounds: filling $per_dev messages to each of $devices push users"
    python3 "$SRC/bench/push_fill.py" "$POSTLINK_SMTP_PORT" "$D/tmpl.eml" "$per_dev" 2000 20000 2 \
        bench@remote.test "${rcpts%,}" >/dev/null || die "the fill failed"
    hp_wait_stored $((rounds * n + r * devices * per_dev)) 600 || die "pushd did not store every message"
    put "lmtp_451_r$r" "$(n451)"
    note_others
    say "round $r of $rounds: $devices devices drain $per_dev each, all at once"
    echo 5 >"/proc/$HP_PUSHD_PID/clear_refs" 2>/dev/null && put "hwm_reset_r$r" 1 || put "hwm_reset_r$r" 0
    rm -f "$D/rss.stop"; : >"$D/rss-$r.samples"
    ( while [ ! -e "$D/rss.stop" ]; do rss VmRSS >>"$D/rss-$r.samples"; sleep 0.02; done ) &
    sampler=$!
    "$B/bench/pl-push-load" --url "$POSTLINK_PUSH_URL" "${toks[@]}" >"$D/load-$r.out" 2>"$D/load-$r.err" ||
        say "pl-push-load reported errors (see $D/load-$r.out, $D/load-$r.err)"
    touch "$D/rss.stop"; wait "$sampler"
    put "load_summary_r$r" "$(tail -n 1 "$D/load-$r.out")"
    note_others
    put "rss_load_hwm_kb_r$r" "$(rss VmHWM)"
    put "rss_load_max_sampled_kb_r$r" "$(sort -n "$D/rss-$r.samples" | tail -n 1)"
    left=0
    for u in $loadu; do
        c=$("$POSTLINKCTL" push queue "$u@$DOM" --json | jq '.messages | length') || c=-1
        left=$((left + c))
    done
    put "load_left_r$r" "$left"
done
put rss_after_kb "$(rss VmRSS)"
put other_processes "$most_others"
put other_processes_seen "$most_names"
put other_harness_processes "$(present)"

# ---- pushd's health -------------------------------------------------------------
h__alive "$HP_PUSHD_PID" && put pushd_alive 1 || put pushd_alive 0
put pushd_stored "$(stored)"
put pushd_log_problems "$(grep -c -i -E 'error|warn|fatal|panic' "$H_SYNC/pushd.log")"
put pushd_not_recorded "$(grep -c 'cannot record what was sent' "$H_SYNC/pushd.log")"
put pushd_lmtp_451 "$(grep -c 'answered 451' "$H_SYNC/pushd.log")"
put pushd_lmtp_slots_busy "$(grep -c 'connection slots busy' "$H_SYNC/pushd.log")"
grep -i -E 'error|warn|fatal|panic' "$H_SYNC/pushd.log" | head -n 5 | sed 's/^/# pushd.log: /' >&2
put loadavg_after "$(cut -d' ' -f1-3 /proc/loadavg)"

python3 "$SRC/bench/push_report.py" "$RES" "$D" "$OUT" || die "report failed (the run's files: $D)"
say "results: $OUT/latest-push.md"
