#!/usr/bin/env bash
# sip.sh -- bench/run sip: mail over SIP (capability 3) against the normal
# SMTP path, side by side in one run between the same two sites
# (tests/harness/route.sh's hr_two_sites): site A is the harness Postfix
# with postlink-route and postlink-sipd, site B another Postfix on
# 127.0.0.2 with its own postlink-sipd, Kamailio between them.  alice
# submits on site A's submission port (SASL) to dave@remote.test, routed
# over SIP to site B's number, or to erin@remote.test, which goes the
# normal way (site A's transport_maps: site B's MX).  Measured, in R
# interleaved rounds:
#   latency      one message at a time, the two paths alternating: from just
#                before the submission to the file in site B's maildir
#                (bench/sip_lat.py polls it every 0.5 ms)
#   throughput   N messages by bench/pl-smtp-load with 1 and with 10
#                parallel submission sessions, until the last is in the
#                maildir
#   the session  site A's postlink-sipd log (INVITE answered in N ms, BYE
#                answered in N ms, INVITEs against messages) and the
#                delivery time Postfix logs (delays=.../d) per path
# Every message must arrive (maildir files and distinct Message-IDs are
# counted) or the run fails.  Results: bench/results/latest-sip.{md,json}.
#
# usage: bench/run sip [--rounds R] [--n N] [--smoke] [--out DIR] [--build-dir DIR]
#   --rounds R   rounds (default 3)
#   --n N        messages per throughput run (default 200); latency: N/4 per
#                path and round
#   --smoke      1 round, 6 messages per throughput run, 3 per latency path,
#                output in a temp dir; uses $abs_top_builddir when set
#   --build-dir  an existing build instead of building build-bench/
#   --out DIR    write latest-sip.md and latest-sip.json there (default
#                bench/results/, or a new temp dir with --smoke)
set -u
SRC=$(cd "$(dirname "$0")/.." && pwd)
rounds=3 n=200 smoke=0 bdir="" OUT="" n_set=0
while [ $# -gt 0 ]; do
    case $1 in
    --rounds) rounds=${2-}; shift ;;
    --n) n=${2-}; n_set=1; shift ;;
    --smoke) smoke=1 ;;
    --build-dir) bdir=${2-}; shift ;;
    --out) OUT=${2-}; shift ;;
    *) echo "bench/run sip: unknown option $1" >&2; exit 64 ;;
    esac
    shift
done
case "$rounds$n" in '' | *[!0-9]*) echo "bench/run sip: --rounds and --n take numbers" >&2; exit 64 ;; esac
[ "$rounds" -ge 1 ] && [ "$n" -ge 1 ] || { echo "bench/run sip: --rounds and --n must be >= 1" >&2; exit 64; }
if [ $smoke = 1 ]; then
    rounds=1
    [ $n_set = 1 ] || n=6
fi
n_lat=$(( n / 4 > 0 ? n / 4 : 1 ))
[ $smoke = 1 ] && [ $n_set = 0 ] && n_lat=3

say() { printf 'bench: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (two private Postfix sites, Kamailio)"
command -v kamailio >/dev/null || die "kamailio not installed (scripts/install-deps.sh)"

# ---- the build -------------------------------------------------------------
PROGS="bench/pl-smtp-load tests/sink/postlink-sink"
. "$SRC/bench/build.sh"
bench_build $PROGS
bench_need $PROGS milters/sync/postlink-sync milters/route/postlink-route agents/sip/postlink-sipd ctl/postlinkctl

# ---- the two sites -----------------------------------------------------------
H_USERS="alice bob" HB_USERS="dave erin fay"
. "$SRC/tests/harness/harness.sh"
. "$SRC/tests/harness/sync.sh"
. "$SRC/tests/harness/route.sh"
. "$SRC/tests/harness/sip.sh"
. "$SRC/tests/harness/sites.sh"
h_init || exit 1
# delays=a/b/c/d in site A's log to the ms (default: 10 ms)
H_POSTFIX_MAIN_EXTRA="delay_logging_resolution_limit = 3"
# Site A's lmtp(8) runs up to 20 deliveries to postlink-sipd at once
# (default_destination_concurrency_limit), each its own call; site B's
# default sip_max_incoming (32) answers them all (calls beyond it would get
# 486 and go the normal way: the report counts 486s and fallbacks).
hr_two_sites || die "the two sites, Kamailio and both postlink-sipd did not start"
D=$H_DIR/bench
mkdir -p "$D"
C=$POSTLINKCTL U=$POSTLINK_DEMO_USER PW=$POSTLINK_DEMO_PASS SUB=$POSTLINK_SUBMISSION_PORT
LA=$H_DIR/sipd-a.log LB=$H_DIR/sipd-b.log MA=$H_DIR/postfix/maillog
SIPU=dave@$HB_DOMAIN NORMU=erin@$HB_DOMAIN PAIRU=fay@$HB_DOMAIN
"$C" route map add "$SIPU" "$HR_NUMBER_B" >/dev/null && "$C" route map add "$PAIRU" "$HR_NUMBER_B" >/dev/null ||
    die "route map add failed"
"$C" route test "$SIPU" | grep -q "number ${HR_NUMBER_B//-/} by rule map" || die "$SIPU is not routed to $HR_NUMBER_B"
"$C" route test "$NORMU" | grep -q "^$NORMU: number " && die "$NORMU would be routed too"
bash "$SRC/bench/msg.sh" 2048 "$U" "$SIPU" >"$D/sip.eml"
bash "$SRC/bench/msg.sh" 2048 "$U" "$NORMU" >"$D/normal.eml"
LOAD=$B/bench/pl-smtp-load
us() { echo "${EPOCHREALTIME/./}"; }
md_new() { echo "$HB_MAILDIR/$HB_DOMAIN/${1%%@*}/new"; }
nfiles() { find "$(md_new "$1")" -maxdepth 1 -type f 2>/dev/null | grep -c .; }
SENT_SIP=0 SENT_NORM=0 SENT_PAIR=0 failed=0
RES=$D/runs.tsv LAT=$D/latency.tsv
: >"$RES"
: >"$LAT"

# settle: both queues empty (every copy counted where it ended)
settle() { hr_wait_queues_empty 30 >/dev/null 2>&1 || { say "queues did not empty"; failed=$((failed + 1)); }; }

# One message to two recipients with one number: one call (checked below).
bash "$SRC/bench/msg.sh" 2048 "$U" "$SIPU" | sed "s/^To: .*/To: $SIPU, $PAIRU\r/" >"$D/pair.eml"
inv0=$(grep -c ': INVITE sip:' "$LA")
b0=$(nfiles "$SIPU") p0=$(nfiles "$PAIRU")
python3 - "$SUB" "$U" "$PW" "$D/pair.eml" "$SIPU" "$PAIRU" <<'PY' || die "the two-recipient message was not accepted"
import smtplib, sys
port, user, pw, f, *rcpts = sys.argv[1:]
s = smtplib.SMTP("127.0.0.1", int(port), timeout=20)
s.login(user, pw)
s.sendmail(user, rcpts, open(f, "rb").read().replace(b"@@ID@@", b"pair"))
s.quit()
PY
SENT_SIP=$((SENT_SIP + 1)) SENT_PAIR=1
h__wait_count "dave" $((b0 + 1)) 20 nfiles "$SIPU" >/dev/null && h__wait_count "fay" $((p0 + 1)) 20 nfiles "$PAIRU" >/dev/null ||
    { say "the two-recipient message did not reach both"; failed=$((failed + 1)); }
settle
PAIR_INVITES=$(( $(grep -c ': INVITE sip:' "$LA") - inv0 ))

# ---- the runs ----------------------------------------------------------------
# lat ROUND: N_LAT messages per path, one at a time, alternating
lat() {
    local inv=$(grep -c ': INVITE sip:' "$LA")
    python3 "$SRC/bench/sip_lat.py" "$SUB" "$U" "$PW" "$n_lat" "$1" \
        "sip:$SIPU:$(md_new "$SIPU"):$D/sip.eml" "normal:$NORMU:$(md_new "$NORMU"):$D/normal.eml" >>"$LAT" ||
        { say "round $1 latency: FAILED"; failed=$((failed + 1)); }
    SENT_SIP=$((SENT_SIP + n_lat)) SENT_NORM=$((SENT_NORM + n_lat))
    settle
    printf 'bench: round %s latency: %s messages per path; %s INVITE(s)\n' "$1" "$n_lat" \
        $(( $(grep -c ': INVITE sip:' "$LA") - inv )) >&2
}
# run_tput ROUND PATH SESSIONS: N messages, SESSIONS at a time, until the last
# is in the maildir
run_tput() {
    local r=$1 path=$2 s=$3 rcpt file base t0 tc t1 end rc=0 got inv off
    if [ "$path" = sip ]; then rcpt=$SIPU file=$D/sip.eml; else rcpt=$NORMU file=$D/normal.eml; fi
    base=$(nfiles "$rcpt") inv=$(grep -c ': INVITE sip:' "$LA") off=$(stat -c %s "$MA")
    t0=$(us)
    "$LOAD" -s "$s" -m "$n" -f "$U" -t "$rcpt" -F "$file" -a "$U:$PW" "127.0.0.1:$SUB" >"$D/client.log" 2>&1 || rc=$?
    tc=$(us)
    end=$(( tc + 60000000 + n * 200000 ))
    until [ "$(nfiles "$rcpt")" -ge $((base + n)) ]; do
        [ "$(us)" -ge $end ] && break
        sleep 0.005
    done
    t1=$(us)
    got=$(( $(nfiles "$rcpt") - base ))
    if [ "$path" = sip ]; then SENT_SIP=$((SENT_SIP + n)); else SENT_NORM=$((SENT_NORM + n)); fi
    [ $rc = 0 ] && [ "$got" -ge "$n" ] ||
        { say "round $r $path x$s: FAILED (client exit $rc, $got of $n in the maildir)"; failed=$((failed + 1)); }
    settle
    # delivery time (Postfix's delays=a/b/c/d: d) summed: the mean number of
    # deliveries in flight is that sum over the run's wall time
    busy=$(tail -c +$((off + 1)) "$MA" | grep "to=<$rcpt>.*status=sent" |
        sed -n 's/.*delays=[0-9.]*\/[0-9.]*\/[0-9.]*\/\([0-9.]*\),.*/\1/p' | awk '{ t += $1 } END { printf "%.3f", t }')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$path" "$s" "$n" "$got" $((t1 - t0)) $((tc - t0)) \
        $(( $(grep -c ': INVITE sip:' "$LA") - inv )) "$busy" >>"$RES"
    printf 'bench: round %s %-6s %2s session(s) %5d msgs %7.1f msg/s (client done after %.2f s of %.2f s)\n' "$r" "$path" "$s" \
        "$got" "$(awk -v n="$got" -v t=$((t1 - t0)) 'BEGIN { printf "%.1f", (t > 0 ? n * 1e6 / t : 0) }')" \
        "$(awk -v t=$((tc - t0)) 'BEGIN { printf "%.2f", t / 1e6 }')" "$(awk -v t=$((t1 - t0)) 'BEGIN { printf "%.2f", t / 1e6 }')" >&2
}

say "$rounds round(s): $n_lat messages per path for the latency, $n per throughput run"
# an unmeasured warm-up (not with --smoke): both paths' processes running
if [ $smoke = 0 ]; then
    n_main=$n n=$(( n < 20 ? n : 20 )) RES_MAIN=$RES RES=$D/warmup.tsv
    run_tput warmup sip 10; run_tput warmup normal 10
    n=$n_main RES=$RES_MAIN
fi
T_START=$(date -u +%FT%TZ) LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
MA_OFF=$(stat -c %s "$MA") LA_OFF=$(stat -c %s "$LA") LB_OFF=$(stat -c %s "$LB")
RUNS=("sip 1" "normal 1" "sip 10" "normal 10")
for r in $(seq 1 "$rounds"); do
    lat "$r"
    for i in 0 1 2 3; do
        run_tput "$r" ${RUNS[$(( (i + r - 1) % 4 ))]}
    done
done

# ---- counts and the report -----------------------------------------------------
got_sip=$(nfiles "$SIPU") got_norm=$(nfiles "$NORMU") got_pair=$(nfiles "$PAIRU")
ids=$(cat "$(md_new "$SIPU")"/* "$(md_new "$NORMU")"/* 2>/dev/null | grep -ci '^Message-ID:')
uids=$(cat "$(md_new "$SIPU")"/* "$(md_new "$NORMU")"/* 2>/dev/null | grep -i '^Message-ID:' | sort -u | wc -l)
via_sip=$(grep -c "to=<$SIPU>, relay=[^ ]*sipd.lmtp.*status=sent (250 2.0.0 delivered over SIP" "$MA")
via_mx=$(grep -c "to=<$NORMU>, relay=$HB_ADDR\[$HB_ADDR\]:$HB_SMTP_PORT,.*status=sent" "$MA")
printf 'sent_sip=%s\nsent_normal=%s\nsent_pair=%s\ngot_sip=%s\ngot_normal=%s\ngot_pair=%s\nmessage_ids=%s\nunique_message_ids=%s\nvia_sip=%s\nvia_mx=%s\npair_invites=%s\n' \
    "$SENT_SIP" "$SENT_NORM" "$SENT_PAIR" "$got_sip" "$got_norm" "$got_pair" "$ids" "$uids" "$via_sip" "$via_mx" \
    "$PAIR_INVITES" >"$D/counts.txt"
# the measured part of the logs: both sipd and site A's Postfix
tail -c +$((LA_OFF + 1)) "$LA" >"$D/sipd-a.part"
tail -c +$((LB_OFF + 1)) "$LB" >"$D/sipd-b.part"
tail -c +$((MA_OFF + 1)) "$MA" >"$D/maillog-a.part"
if [ -z "$OUT" ]; then
    if [ $smoke = 1 ]; then OUT=$(mktemp -d /tmp/postlink-bench-sip.XXXXXX); else OUT=$SRC/bench/results; fi
fi
mkdir -p "$OUT"
python3 "$SRC/bench/sip_report.py" "$RES" "$LAT" "$D/counts.txt" "$D/sipd-a.part" "$D/sipd-b.part" "$D/maillog-a.part" "$OUT" \
    "sip_user=$SIPU" "normal_user=$NORMU" "number=$HR_NUMBER_B" \
    "nproc=$(nproc)" "postfix=$(postconf -c "$H_DIR/postfix/etc" -h mail_version 2>/dev/null)" \
    "kamailio=$(kamailio -v 2>/dev/null | head -n 1 | awk '{ print $3 }')" "date=$T_START" \
    "rounds=$rounds" "n=$n" "n_latency=$n_lat" "smoke=$smoke" \
    "lmtp_concurrency=$(postconf -c "$H_DIR/postfix/etc" -xh lmtp_destination_concurrency_limit 2>/dev/null)" \
    "load_start=$LOAD_START" "load_end=$(cut -d' ' -f1-3 /proc/loadavg)" "build=$B" || die "report failed"
cat "$OUT/latest-sip.md"
say "results in $OUT/latest-sip.md and $OUT/latest-sip.json"
grep -q '^Delivered: every message' "$OUT/latest-sip.md" || failed=$((failed + 1))
[ $failed = 0 ] || die "$failed run(s) or checks failed"
exit 0
