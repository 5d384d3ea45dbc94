#!/usr/bin/env bash
# t_sip_interop.sh -- capability 3 against third-party SIP software on the
# other side of the call (site A's postlink-sipd calling through Kamailio):
#   - SIPp (Debian's sip-tester) scripted as the callee: it answers with its
#     own SDP (m=application PORT TCP smtp, a=setup:passive, its token);
#     socat takes the TCP connection, checks the token line and hands the
#     bytes to a real SMTP server (site B's Postfix MX listener): the mail
#     reaches erin's maildir, site A logs it delivered over SIP, and SIPp
#     sees our ACK and BYE;
#   - baresip, a real softphone, answers our offer (no audio, only the TCP
#     SMTP line) with 488 Not Acceptable Here: the mail goes the normal way,
#     once.
set -u
H_USERS="alice bob" HB_USERS="dave erin"
. "${abs_top_srcdir:-.}/tests/integration/tap.sh"
. "$abs_top_srcdir/tests/harness/harness.sh"
. "$abs_top_srcdir/tests/harness/sync.sh"
. "$abs_top_srcdir/tests/harness/route.sh"
. "$abs_top_srcdir/tests/harness/sip.sh"
. "$abs_top_srcdir/tests/harness/sites.sh"

for p in sipp baresip socat; do
    command -v $p >/dev/null || { tap_fail "$p installed (scripts/install-deps.sh)"; tap_done; exit 1; }
done
h_init || exit 1
hr_two_sites || { tap_fail "two sites, Kamailio and both postlink-sipd start"; tap_done; exit 1; }
tap_ok "two sites, Kamailio and both postlink-sipd start and register"
C=$POSTLINKCTL U=$POSTLINK_DEMO_USER PW=$POSTLINK_DEMO_PASS SUB=$POSTLINK_SUBMISSION_PORT
LA=$H_DIR/sipd-a.log MA=$H_DIR/postfix/maillog MB=$HB_DIR/maillog R=$HB_DOMAIN

send() {
    local to=$1@$R name=$2 out
    shift 2
    MID=$(hs_msgid "$name")
    out=$(hs_send "$SUB" "$U" "$to" --auth-user "$U" --auth-password "$PW" --header "Message-Id: $MID" "$@")
    QID=$(sed -n 's/.*250 .*queued as \([0-9A-Za-z]*\).*/\1/p' <<<"$out" | tail -1)
}

# --- SIPp as the callee, socat + site B's Postfix as its SMTP side ----------
AP=$(sip_free_port) SP=$(h_free_port) TOK=$(hr_token)
(cd "$H_DIR" && exec sipp -sf "$abs_top_srcdir/tests/sip/uas_answer.xml" -t u1 -i 127.0.0.1 -p "$AP" -m 1 \
    -key port "$SP" -key token "$TOK" -nostdin -trace_err -timeout 30s -timeout_error) >"$H_DIR/sipp-answer.log" 2>&1 &
SIPP=$!
h_register sipp "$SIPP"
# socat (a child per connection; h_wait_port's probe gets "token-bad"): the first line must be this call's token, then the
# bytes go to site B's MX listener as they are.
cat >"$H_DIR/token-gate.sh" <<GATE
#!/bin/sh
read -r l
l=\$(printf '%s' "\$l" | tr -d '\\r')
if [ "\$l" = "POSTLINK $TOK" ]; then
    echo token-ok >&2
    exec socat - TCP:127.0.0.2:$HB_SMTP_PORT
fi
echo "token-bad \$l" >&2
GATE
chmod +x "$H_DIR/token-gate.sh"
h_spawn socat "$H_DIR/socat.log" socat "TCP-LISTEN:$SP,bind=127.0.0.1,reuseaddr,fork" "EXEC:$H_DIR/token-gate.sh"
h_wait_port "$SP" 5
hr_sipp_register 05066660006 "$AP"
"$C" route map add "erin@$R" 050-6666-0006 >/dev/null
send erin sipp --header "Subject: to SIPp"
hb_wait_maildir_files erin 1 >/dev/null
tap_check "SIPp answered our INVITE with its own SDP; its port carried the SMTP to site B's Postfix: at erin's, once" \
    test "$(hb_maildir_grep "$MID" | wc -l)" = 1
tap_check "... socat saw this call's token line" grep -q token-ok "$H_DIR/socat.log"
tap_check "... site A's Postfix: delivered over SIP to 05066660006" \
    grep -q "$QID: to=<erin@$R>, relay=[^ ]*sipd.lmtp.*status=sent (250 2.0.0 delivered over SIP to 05066660006" "$MA"
end=$(( $(h__ms) + 10000 ))
while h__alive "$SIPP" && [ "$(h__ms)" -lt $end ]; do sleep 0.05; done
wait "$SIPP"
tap_check "SIPp's scenario completed: our ACK and BYE reached it" test $? = 0

# --- baresip: a real softphone answers an unknown media line with 488 -------
BD=$H_DIR/baresip BP=$(sip_free_port)
mkdir -p "$BD"
cat >"$BD/config" <<CFG
poll_method epoll
sip_listen 127.0.0.1:$BP
sip_transports tcp
module_path /usr/lib/baresip/modules
module g711.so
module aubridge.so
module account.so
module menu.so
audio_player aubridge,x
audio_source aubridge,x
audio_alert aubridge,x
CFG
echo "<sip:05077770007@$POSTLINK_SIP_DOMAIN;transport=tcp>;outbound=\"sip:127.0.0.1:$POSTLINK_SIP_PORT;transport=tcp\";regint=60;answermode=auto" >"$BD/accounts"
: >"$BD/contacts"
h_spawn baresip "$BD/baresip.log" baresip -f "$BD"
sip_wait_file "$BD/baresip.log" "05077770007@$POSTLINK_SIP_DOMAIN: .*200 OK" 1 10
tap_check "baresip registered 05077770007 at Kamailio" grep -q "200 OK" "$BD/baresip.log"
"$C" route map add "dave@$R" 050-7777-0007 >/dev/null
send dave baresip --header "Subject: to baresip"
hb_wait_maildir_files dave 1 >/dev/null
tap_check "baresip refuses the call: 488 (no common media)" grep -q "no common audio codecs\|rejected" "$BD/baresip.log"
tap_check "... the mail went the normal way, logged with the Call-ID" \
    grep -q "$QID: postlink-sipd: to=<dave@$R> fallback: queued as [0-9A-F]* (Call-ID [0-9a-f]*@postlink: SIP 488" "$LA"
tap_check "... and reached dave exactly once" test "$(hb_maildir_grep "$MID" | wc -l)" = 1
[ "$TAP_FAILED" = 0 ] || { tail -n 20 "$LA" "$H_DIR/sipp-answer.log" "$BD/baresip.log" | sed 's/^/# /'; }
tap_done
