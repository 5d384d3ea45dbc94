#!/usr/bin/env bash
# sync-bench.sh -- capability 1 throughput, side by side on one private
# Postfix: N control messages through the postlink-sync milter and
# postlink-syncd (each applied and fanned out to two devices) against N
# plain messages through the same Postfix with no milter, then state
# updates per second in the store alone (bench/sync_store_bench).
# Messages are sent by 4 parallel libcurl clients from 127.0.0.1, which is
# made a sync peer so that controls need no SASL round trips.
#
# usage: bench/sync-bench.sh [BUILD_DIR] [N]     (defaults: build 300)
#        bench/sync-bench.sh --smoke             (N=10, checks the output shape)
set -u
cd "$(dirname "$0")/.."
. bench/lib.sh
bench_args sync-bench bench/sync_store_bench milters/sync/postlink-sync -- "$@"
. tests/harness/harness.sh
. tests/harness/sync.sh
h_init || exit 1
HS_PEER_ADDR=127.0.0.1
h_start_sink && h_start_dovecot && hs_setup && h_start_postfix && hs_start || exit 1
U=$POSTLINK_DEMO_USER MX=smtp://127.0.0.1:$POSTLINK_SMTP_PORT LOG=$H_DIR/postfix/maillog
"$POSTLINKCTL" device add "$U" phone@devices.example >/dev/null
"$POSTLINKCTL" device add "$U" desk@devices.example >/dev/null
"$POSTLINKCTL" device add "$U" pager@pager.example >/dev/null

mkmsg() {   # mkmsg FILE ID [HEADER...]
    local f=$1 id=$2; shift 2
    { printf 'From: <phone@devices.example>\r\nTo: <%s>\r\nSubject: bench\r\nMessage-ID: <%s@bench.example>\r\n' "$U" "$id"
      for h in "$@"; do printf '%s\r\n' "$h"; done
      printf '\r\n'; head -c 1500 /dev/zero | tr '\0' 'x' | fold -w 70 | sed 's/$/\r/'; } >"$f"
}
mkdir -p "$H_DIR/msgs"
mkmsg "$H_DIR/msgs/target" target
"$M" smtp "$MX" friend@elsewhere.example "$U" "$H_DIR/msgs/target" >/dev/null && h_wait_maildir_files alice 1 || exit 1
for i in $(seq "$N"); do
    w=read; [ $((i % 2)) = 0 ] && w=unread
    mkmsg "$H_DIR/msgs/c$i" "c$i" "X-Control: $w" "X-Control-Target: <target@bench.example>"
    mkmsg "$H_DIR/msgs/p$i" "p$i"
done

count() { grep -c "$1" "$LOG" 2>/dev/null || true; }
wait_count() {   # wait_count PATTERN N
    local end=$((SECONDS + 300))
    until [ "$(count "$1")" -ge "$2" ]; do [ $SECONDS -ge $end ] && { echo "sync-bench: timeout" >&2; exit 1; }; sleep 0.05; done
}
ms() { local t=${EPOCHREALTIME//[!0-9]/}; echo $((t / 1000)); }
send_all() {     # send_all PREFIX
    seq "$N" | xargs -P 4 -I{} "$M" smtp "$MX" phone@devices.example "$U" "$H_DIR/msgs/$1{}" >/dev/null
}

t0=$(ms)
send_all c
wait_count 'sync.postlink.invalid>.*status=sent' "$N"
end=$((SECONDS + 300))        # and every copy handed on to the devices
until h_postqueue -p | grep -q 'Mail queue is empty' || [ $SECONDS -ge $end ]; do sleep 0.05; done
t_ctl=$(( $(ms) - t0 ))

H_POSTFIX_MAIN_EXTRA="$H_POSTFIX_MAIN_EXTRA
smtpd_milters ="
h_postfix_reload || exit 1
base=$(count "to=<$U>.*relay=.*status=sent")
t0=$(ms)
send_all p
wait_count "to=<$U>.*relay=.*status=sent" $((base + N))
t_plain=$(( $(ms) - t0 ))

copies=$(grep -c 'handed to Postfix' "$H_SYNC/syncd.log")
printf '%-34s %6s %9s %10s %8s\n' run messages "time(ms)" "msgs/s" ratio
awk -v n="$N" -v a="$t_plain" -v b="$t_ctl" 'BEGIN {
    printf "%-34s %6d %9d %10.1f %8.2f\n", "plain, no milter (baseline)", n, a, n * 1000 / a, 1
    printf "%-34s %6d %9d %10.1f %8.2f\n", "controls, milter+syncd+fan-out", n, b, n * 1000 / b, a / b }'
echo "($copies of the $N controls changed the state and were fanned out to 2 devices)"
echo
"$B/bench/sync_store_bench" -n $((N < 100 ? 100 : N * 5)) 2>/dev/null
