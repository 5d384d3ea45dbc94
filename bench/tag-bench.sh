#!/usr/bin/env bash
# tag-bench.sh -- capability 4 cost, side by side on one private Postfix:
# N messages that alice (linked, online in XMPP) submits over SASL to bob
# (local), with the postlink-tag milter (tagging, recording the mail-id,
# a presence lookup to postlink-xmppd for bob's copy) against the same N
# through the same Postfix without it.  One libcurl client sends them one
# after another; the table gives messages per second (until the last is
# in bob's mailbox) and the SMTP transaction time per message at p50/p99,
# and the latency the milter adds.
#
# usage: bench/tag-bench.sh [BUILD_DIR] [N]     (defaults: build 300)
#        bench/tag-bench.sh --smoke             (N=10, checks the output shape)
set -u
cd "$(dirname "$0")/.."
. bench/lib.sh
bench_args tag-bench milters/tag/postlink-tag agents/xmpp/postlink-xmppd tests/tools/pl-xmpp-client -- "$@"
. tests/harness/harness.sh
. tests/harness/xmpp.sh
h_init || exit 1
h_start_sink && h_start_dovecot && hx_start_prosody && hx_setup && h_start_postfix &&
    hx_start_xmppd && hx_start_tag || exit 1
D=$POSTLINK_DOMAIN A=$POSTLINK_DEMO_USER LOG=$H_DIR/postfix/maillog
"$POSTLINKCTL" messenger link "$A" "alice@$POSTLINK_XMPP_DOMAIN" >/dev/null
hx_client alice -a || exit 1
end=$((SECONDS + 10))
until [ "$(hx_presence "alice@$POSTLINK_XMPP_DOMAIN")" = online ]; do
    [ $SECONDS -ge $end ] && { echo "tag-bench: alice never online" >&2; exit 1; }; sleep 0.1; done
URL="smtp://${A/@/%40}:$POSTLINK_DEMO_PASS@127.0.0.1:$POSTLINK_SUBMISSION_PORT"

mkdir -p "$H_DIR/msgs"
for r in tag plain; do
    for i in $(seq "$N"); do
        { printf 'From: <%s>\r\nTo: <bob@%s>\r\nSubject: bench %s %d\r\nMessage-ID: <%s%d@bench.example>\r\n\r\n' \
              "$A" "$D" "$r" "$i" "$r" "$i"
          head -c 1500 /dev/zero | tr '\0' 'x' | fold -w 70 | sed 's/$/\r/'; } >"$H_DIR/msgs/$r$i"
    done
done
ms() { local t=${EPOCHREALTIME//[!0-9]/}; echo $((t / 1000)); }
us() { local t=${EPOCHREALTIME//[!0-9]/}; echo "$t"; }
delivered() { grep -c "to=<bob@$D>.*status=sent" "$LOG" 2>/dev/null || true; }
run() {          # run PREFIX: send N one after another; latencies (us) in $H_DIR/lat.PREFIX
    local base t0 a i end
    base=$(delivered)
    : >"$H_DIR/lat.$1"
    t0=$(ms)
    for i in $(seq "$N"); do
        a=$(us)
        "$M" smtp "$URL" "$A" "bob@$D" "$H_DIR/msgs/$1$i" >/dev/null || { echo "tag-bench: send failed" >&2; exit 1; }
        echo $(( $(us) - a )) >>"$H_DIR/lat.$1"
    done
    end=$((SECONDS + 300))
    until [ "$(delivered)" -ge $((base + N)) ]; do
        [ $SECONDS -ge $end ] && { echo "tag-bench: timeout" >&2; exit 1; }; sleep 0.05; done
    echo $(( $(ms) - t0 ))
}
pct() { sort -n "$1" | awk -v p="$2" '{ v[NR] = $1 } END { i = int(NR * p / 100 + 0.999); if (i < 1) i = 1; printf "%.1f", v[i] / 1000 }'; }

t_tag=$(run tag) || exit 1
tagged=$(grep -c 'presence=online' "$H_TAG/tag.log")
H_POSTFIX_MAIN_EXTRA="$H_POSTFIX_MAIN_EXTRA
smtpd_milters ="
h_postfix_reload || exit 1
t_plain=$(run plain) || exit 1

p50t=$(pct "$H_DIR/lat.tag" 50) p99t=$(pct "$H_DIR/lat.tag" 99)
p50p=$(pct "$H_DIR/lat.plain" 50) p99p=$(pct "$H_DIR/lat.plain" 99)
printf '%-34s %6s %9s %9s %7s %8s %8s\n' run messages "time(ms)" "msgs/s" ratio "p50(ms)" "p99(ms)"
awk -v n="$N" -v a="$t_plain" -v b="$t_tag" -v p50p="$p50p" -v p99p="$p99p" -v p50t="$p50t" -v p99t="$p99t" 'BEGIN {
    printf "%-34s %6d %9d %9.1f %7.2f %8.1f %8.1f\n", "plain, no milter (baseline)", n, a, n * 1000 / a, 1, p50p, p99p
    printf "%-34s %6d %9d %9.1f %7.2f %8.1f %8.1f\n", "postlink-tag, tagging + presence", n, b, n * 1000 / b, a / b, p50t, p99t
    printf "added latency per message: p50 %+.1f ms, p99 %+.1f ms\n", p50t - p50p, p99t - p99p }'
echo "($tagged of the $N messages were tagged and annotated online by a presence lookup)"
