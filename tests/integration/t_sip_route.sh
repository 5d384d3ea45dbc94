#!/usr/bin/env bash
# t_sip_route.sh -- capability 3 end to end between two private Postfix
# sites and a real Kamailio: site A (postlink-route, postlink-sipd
# registered as 050-1111-0001) and site B on 127.0.0.2 (its own Postfix,
# postlink-sipd registered as 050-2222-0002 handing calls to its SIP
# listener with XCLIENT).  Checks what users would see:
#   - a mail for a routed recipient reaches dave's maildir at site B
#     through site B's SIP listener (not its MX), with the call in both
#     sipd logs (INVITE, 200, BYE) and no X-Postlink-Route left; the
#     sender's NOTIFY=SUCCESS gets site B's "delivered" DSN within seconds;
#   - one message, two recipients: the routed one over SIP, the other the
#     normal way, each exactly once;
#   - an unknown user at site B: 550 5.1.1 reaches site A at once and
#     alice gets the bounce naming the original recipient and site B's text;
#   - site B's normal checks apply to the caller: relaying through site B
#     over SIP is refused (554 5.7.1), bounced at once;
#   - a connection to site B's media port without the call's token gets
#     nothing and is logged.
set -u
H_USERS="alice bob" HB_USERS="dave erin"
. "${abs_top_srcdir:-.}/tests/integration/tap.sh"
. "$abs_top_srcdir/tests/harness/harness.sh"
. "$abs_top_srcdir/tests/harness/sync.sh"
. "$abs_top_srcdir/tests/harness/route.sh"
. "$abs_top_srcdir/tests/harness/sip.sh"
. "$abs_top_srcdir/tests/harness/sites.sh"

h_init || exit 1
hr_two_sites || { tap_fail "two sites, Kamailio and both postlink-sipd start"; tap_done; exit 1; }
tap_ok "two sites, Kamailio and both postlink-sipd start and register"

C=$POSTLINKCTL U=$POSTLINK_DEMO_USER PW=$POSTLINK_DEMO_PASS SUB=$POSTLINK_SUBMISSION_PORT
LA=$H_DIR/sipd-a.log LB=$H_DIR/sipd-b.log MA=$H_DIR/postfix/maillog MB=$HB_DIR/maillog
"$C" route map add "$HB_DOMAIN" "$HR_NUMBER_B" >/dev/null &&
    "$C" route map add third.test "$HR_NUMBER_B" >/dev/null
tap_check "site A routes $HB_DOMAIN and third.test to site B's number" \
    sh -c '"$1" route test "dave@$2" | grep -q "number 05022220002 by rule map:domain"' _ "$C" "$HB_DOMAIN"

# send TO NAME [swaks options]: alice on site A's submission port; QID, MID
send() {
    local to=$1 name=$2 out
    shift 2
    MID=$(hs_msgid "$name")
    out=$(hs_send "$SUB" "$U" "$to" --auth-user "$U" --auth-password "$PW" --header "Message-Id: $MID" "$@")
    QID=$(sed -n 's/.*250 .*queued as \([0-9A-Za-z]*\).*/\1/p' <<<"$out" | tail -1)
    [ -n "$QID" ] || tap_diag "not accepted: $name" "$(tail -n 5 <<<"$out")"
}
# lmtp_result QID RCPT: site A's lmtp(8) result line for RCPT (waits for it)
lmtp_line() {
    hs_wait_log "$MA" "$1: to=<$2>, relay=[^ ]*sipd.lmtp" 15 >/dev/null &&
        grep "$1: to=<$2>, relay=[^ ]*sipd.lmtp" "$MA" | tail -1
}

# --- over SIP, with a success DSN --------------------------------------------
MID=$(hs_msgid sip1)
QID=$(hr_send_dsn "$SUB" "$U" "$PW" "dave@$HB_DOMAIN" "$MID" SUCCESS,FAILURE)
hb_wait_maildir_files dave 1 >/dev/null
f=$(hb_maildir_grep "$MID" | head -1)
tap_check "the mail reaches dave's maildir at site B" test -n "$f"
bqid=$(grep -h "postfix-b/sip/smtpd\[.*client=" "$MB" | tail -1 | sed -n 's/.*\]: \([0-9A-F]*\): client=.*/\1/p')
tap_check "... through site B's SIP listener, not its MX (postfix-b/sip)" \
    grep -q "postfix-b/sip/cleanup.*message-id=$MID\|$bqid: message-id=$MID" "$MB"
tap_check "... and site A's Postfix says delivered over SIP to 05022220002 with the Call-ID" \
    sh -c 'lmtp_line() { grep "$1: to=<$2>, relay=[^ ]*sipd.lmtp" "$3" | tail -1; }
           lmtp_line "$1" "$2" "$3" | grep -q "status=sent (250 2.0.0 delivered over SIP to 05022220002 (Call-ID [0-9a-f]*@postlink)"' \
    _ "$QID" "dave@$HB_DOMAIN" "$MA"
callid=$(grep -o "Call-ID [0-9a-f]*@postlink): " "$MA" | tail -1 | sed 's/Call-ID \(.*\)): /\1/')
tap_check "the call in site A's sipd log: INVITE, answered 200, BYE answered 200" \
    sh -c 'grep -q "Call-ID $1: INVITE sip:05022220002@" "$2" && grep -q "Call-ID $1: .* answered 200" "$2" &&
           grep -q "Call-ID $1: BYE answered 200" "$2"' _ "$callid" "$LA"
tap_check "... and in site B's: INVITE for 05022220002 via the SIP server, answered, SMTP handed over with XCLIENT" \
    sh -c 'grep -q "Call-ID $1: INVITE for 05022220002" "$2" && grep -q "Call-ID $1: SMTP from 127.0.0.1 handed to 127.0.0.2:[0-9]* (XCLIENT" "$2"' \
    _ "$callid" "$LB"
tap_check "no X-Postlink-Route reaches site B" sh -c '! grep -qi "^X-Postlink-Route:" "$1"' _ "$f"
tap_check "site B saw the caller's address (XCLIENT), as its Received line says" \
    grep -q "from .*\[127.0.0.1\]" "$f"
h_wait_maildir_files alice 1 >/dev/null
dsn=$(grep -l "$MID\|Delivery Status Notification\|delivered" "$POSTLINK_MAILDIR"/*/alice/new/* 2>/dev/null | head -1)
[ -z "$dsn" ] && dsn=$(find "$POSTLINK_MAILDIR" -path '*alice*' -type f | head -1)
tap_check "alice (NOTIFY=SUCCESS) gets site B's success DSN naming dave@$HB_DOMAIN" \
    sh -c 'grep -q "Action: delivered" "$1" && grep -q "Final-Recipient: rfc822; *dave@$2" "$1"' _ "$dsn" "$HB_DOMAIN"
tap_check "the DSN comes from site B (Reporting-MTA mail.$HB_DOMAIN)" grep -q "Reporting-MTA: dns; *mail.$HB_DOMAIN" "$dsn"
delay=$(lmtp_line "$QID" "dave@$HB_DOMAIN" | sed -n 's/.*delay=\([0-9.]*\),.*/\1/p')
tap_check "a definitive result within 10 s of the submission (delay=$delay s)" \
    awk -v d="$delay" 'BEGIN { exit !(d != "" && d < 10) }'

# --- two recipients, one routed ----------------------------------------------
n0=$(h_count_sink_files)
send "erin@$HB_DOMAIN,zed@elsewhere.test" split --header "Subject: split"
hb_wait_maildir_files erin 1 >/dev/null
hs_wait_sink_grep "$MID" 1 >/dev/null
tap_check "two recipients: erin over SIP ..." \
    sh -c 'grep "$1: to=<erin@$2>, relay=[^ ]*sipd.lmtp" "$3" | grep -q "delivered over SIP"' _ "$QID" "$HB_DOMAIN" "$MA"
tap_check "... zed@elsewhere.test the normal way (re-injected, at the sink)" \
    sh -c 'grep "$1: to=<zed@elsewhere.test>, relay=[^ ]*sipd.lmtp" "$2" | grep -q "sent the normal way: queued as"' _ "$QID" "$MA"
hr_wait_queues_empty 10 >/dev/null
nb=$(hb_maildir_grep "$MID" | wc -l) ns=$(hs_sink_grep "$MID" | wc -l)
tap_check "... each exactly once (site B $nb, sink $ns)" test "$nb.$ns" = 1.1

# --- 5xx at the destination: an immediate bounce -----------------------------
send "nobody@$HB_DOMAIN" bounce1 --header "Subject: to nobody"
line=$(lmtp_line "$QID" "nobody@$HB_DOMAIN")
tap_check "an unknown user at site B: 550 5.1.1 reaches site A's Postfix at once (status=bounced)" \
    grep -q "status=bounced (host .* said: 550 5.1.1 over SIP: " <<<"$line"
h_wait_maildir_files alice 2 >/dev/null
b=$(grep -l "nobody@$HB_DOMAIN" $(find "$POSTLINK_MAILDIR" -path '*alice*' -type f) 2>/dev/null | head -1)
tap_check "alice's bounce names nobody@$HB_DOMAIN and site B's text" \
    sh -c 'grep -q "Final-Recipient: rfc822; *nobody@$2" "$1" && grep -qi "user unknown\|5.1.1" "$1"' _ "$b" "$HB_DOMAIN"
tap_check "... and no internal address: its only Final-Recipient is the original one" \
    sh -c '[ "$(grep -c "^Final-Recipient:" "$1")" = 1 ] && ! grep -qi "postlink.invalid" "$1"' _ "$b"

# --- site B's restrictions apply to the caller -------------------------------
send "x@third.test" relay1 --header "Subject: relay through B"
line=$(lmtp_line "$QID" "x@third.test")
tap_check "relaying through site B over SIP is refused by site B's own checks (554 5.7.1), bounced at once" \
    grep -q "status=bounced (.*554 5.7.1 over SIP: .*Relay access denied" <<<"$line"

# --- the token binds the connection ------------------------------------------
offer=$H_DIR/probe-offer.sdp
tok=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf 'v=0\r\no=probe 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=application 9 TCP smtp\r\na=setup:active\r\na=connection:new\r\na=postlink-token:%s\r\n' "$tok" >"$offer"
"$abs_top_builddir/tests/tools/pl-sip-call" call --proxy "sip:127.0.0.1:$POSTLINK_SIP_PORT;transport=tcp" \
    --bind "sip:127.0.0.1:$(sip_free_port);transport=tcp" --domain "$POSTLINK_SIP_DOMAIN" --number 05022220002 \
    --sdp "$offer" --answer-out "$H_DIR/probe-answer.sdp" --hold-ms 1500 >"$H_DIR/probe.log" 2>&1 &
probe=$!
sip_wait_file "$H_DIR/probe.log" "answer-end" 1 10
port=$(sed -n 's/^m=application \([0-9]*\) TCP smtp.*/\1/p' "$H_DIR/probe-answer.sdp" | tr -d '\r')
btok=$(sed -n 's/^a=postlink-token:\([0-9a-f]*\).*/\1/p' "$H_DIR/probe-answer.sdp" | tr -d '\r')
got=$(timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.2/$1; printf "POSTLINK %064d\r\n" 0 >&3; cat <&3' _ "$port" 2>/dev/null)
good=$(timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.2/$1; printf "POSTLINK %s\r\n" "$2" >&3; IFS= read -r l <&3; echo "$l"; printf "QUIT\r\n" >&3' _ "$port" "$btok" 2>/dev/null)
wait $probe
tap_check "a connection to site B's media port with a wrong token gets nothing (no SMTP greeting)" test -z "$got"
tap_check "... and site B logs it" grep -q "without this call's token: closed" "$LB"
tap_check "... the call's channel survives it: with the token from site B's SDP, site B's Postfix greets" \
    grep -q "^220 mail.$HB_DOMAIN" <<<"$good"

# --- site B answers active: it connects to site A (RFC 4145's other role) ---
hs_kill "$HR_SIPD_B_PID"
echo "sip_answer_setup = active" >>"$HR_CONF_B"
hr_start_sipd b "$HR_CONF_B" "$H_DIR/siteb-postlink/sipd.lmtp" || tap_diag "site B's postlink-sipd did not restart"
HR_SIPD_B_PID=$HR_SIPD_PID
n0=$(hb_maildir_files dave)
send "dave@$HB_DOMAIN" active1 --header "Subject: B connects"
hb_wait_maildir_files dave $((n0 + 1)) >/dev/null
tap_check "site B answering active (it connects, with site A's token): delivered over SIP" \
    sh -c 'grep "$1: to=<dave@$2>, relay=[^ ]*sipd.lmtp" "$3" | grep -q "delivered over SIP"' _ "$QID" "$HB_DOMAIN" "$MA"
tap_check "... site B says so: answered, we are active" grep -q "answered, we are active" "$LB"

for p in "$HR_SIPD_A_PID" "$HR_SIPD_B_PID"; do
    tap_check "postlink-sipd $p still running" h__alive "$p"
done
tap_check "no sanitizer report in the sipd logs" eval '! grep -qE "runtime error|Sanitizer" "$LA" "$LB"'
[ "$TAP_FAILED" = 0 ] || { tail -n 30 "$LA" "$LB" | sed 's/^/# /'; hb_diag; }
tap_done
