#!/usr/bin/env bash
# t_sip_fallback.sh -- capability 3's fallback, exactly once, between two
# private Postfix sites and Kamailio.  Each case routes one of site B's
# users to a number whose call cannot carry the mail, and checks that the
# mail then arrives the normal way (site B's MX listener) within 5 s of
# submission, exactly once, logged with the Call-ID and queue id:
#   a number nobody registered (404); a callee that refuses (486), that
#   answers with an SDP port nothing listens on, with port 0, or with
#   garbage; a callee that rings for ever (SIPp: CANCEL after
#   sip_invite_timeout); site B's postlink-sipd killed (its registration
#   left behind); a peer that drops the connection during DATA (a 6 MB
#   message: before the final dot was sent), or stops reading then (after
#   sip_smtp_timeout).
# And the other side of the rule: a peer that drops the connection after
# the final dot is deferred, not fallen back, and delivered once over SIP
# on the retry; SIGKILL of site A's postlink-sipd right after the fallback
# was recorded (POSTLINK_SIPD_TEST_KILL=fallback-recorded) and right after
# it was decided (=fallback-pending): after the restart the retry sends
# nothing twice and never calls again.
set -u
H_USERS="alice bob" HB_USERS="dave erin frank gina hank ivan judy kim lee max ned"
HR_INVITE_TIMEOUT=3s HR_SMTP_TIMEOUT=5s
. "${abs_top_srcdir:-.}/tests/integration/tap.sh"
. "$abs_top_srcdir/tests/harness/harness.sh"
. "$abs_top_srcdir/tests/harness/sync.sh"
. "$abs_top_srcdir/tests/harness/route.sh"
. "$abs_top_srcdir/tests/harness/sip.sh"
. "$abs_top_srcdir/tests/harness/sites.sh"

command -v sipp >/dev/null || { tap_fail "sipp installed (Debian package sip-tester)"; tap_done; exit 1; }
h_init || exit 1
hr_two_sites || { tap_fail "two sites, Kamailio and both postlink-sipd start"; tap_done; exit 1; }
tap_ok "two sites, Kamailio and both postlink-sipd start and register"

C=$POSTLINKCTL U=$POSTLINK_DEMO_USER PW=$POSTLINK_DEMO_PASS SUB=$POSTLINK_SUBMISSION_PORT
LA=$H_DIR/sipd-a.log MA=$H_DIR/postfix/maillog MB=$HB_DIR/maillog R=$HB_DOMAIN
FAKE=$abs_top_srcdir/tests/fakes/smtp-peer.py

send() {   # send USER NAME [swaks options]: alice to USER@site B; QID, MID, T0
    local to=$1@$R name=$2 out
    shift 2
    MID=$(hs_msgid "$name")
    T0=$(h__ms)
    out=$(hs_send "$SUB" "$U" "$to" --auth-user "$U" --auth-password "$PW" --header "Message-Id: $MID" "$@")
    QID=$(sed -n 's/.*250 .*queued as \([0-9A-Za-z]*\).*/\1/p' <<<"$out" | tail -1)
    [ -n "$QID" ] || tap_diag "not accepted: $name" "$(tail -n 5 <<<"$out")"
}
# fell_back DESC USER REASON: the last message reached USER by site B's MX
# listener within 5 s, exactly once, and site A logged the fallback with
# the Call-ID and the queue id.
fell_back() {
    local desc=$1 user=$2 reason=$3 f el n
    if ! hb_wait_maildir_files "$user" 1 10 >/dev/null; then
        tap_fail "$desc (not delivered)"
        return
    fi
    el=$(( $(h__ms) - T0 ))
    hr_wait_queues_empty 10 >/dev/null      # a second copy could still be on its way
    n=$(hb_maildir_grep "$MID" | wc -l)
    bq=$(grep "message-id=$MID" "$MB" | sed -n 's/.*: \([0-9A-F]*\): message-id=.*/\1/p' | head -1)
    if [ "$n" = 1 ] && [ "$el" -le "${FB_LIMIT:-5000}" ] && [ -n "$bq" ] &&
        grep -q "$QID: postlink-sipd: to=<$user@$R> fallback: queued as [0-9A-F]* (Call-ID [0-9a-f]*@postlink: $reason" "$LA" &&
        grep -q "postfix-b/smtpd\[[0-9]*\]: $bq: client=" "$MB" &&
        grep -q "$QID: to=<$user@$R>, relay=[^ ]*sipd.lmtp.*status=sent (250 2.0.0 sent the normal way: queued as .* (fallback from SIP))" "$MA"; then
        tap_ok "$desc: the normal way in ${el} ms (at most ${FB_LIMIT:-5000}), once"
    else
        tap_fail "$desc (copies $n, ${el} ms)"
        grep "$QID" "$LA" "$MA" | tail -n 4 | sed 's/^/#   /'
    fi
}

# --- (a) nobody has the number --------------------------------------------
"$C" route map add "dave@$R" 050-9999-0000 >/dev/null
send dave fb404
fell_back "a number nobody registered (404)" dave "SIP 404 Not Found"

# --- (b) the callee refuses ------------------------------------------------
hr_callee busy 05044440004 --status 486
"$C" route map add "erin@$R" 050-4444-0004 >/dev/null
send erin fb486
fell_back "a callee that refuses (486 Busy Here)" erin "SIP 486"

# --- (c) an SDP port nothing listens on, port 0, garbage ----------------------
dead=$(h_free_port)
hr_sdp "$H_DIR/dead.sdp" "$dead" "$(hr_token)"
hr_callee dead 05044440005 --sdp "$H_DIR/dead.sdp"
"$C" route map add "frank@$R" 050-4444-0005 >/dev/null
send frank fbtcp
fell_back "the answer's TCP port refuses the connection" frank "connect to 127.0.0.1:$dead: Connection refused"
hr_sdp "$H_DIR/port0.sdp" 0 "$(hr_token)"
hr_callee port0 05044440006 --sdp "$H_DIR/port0.sdp"
"$C" route map add "gina@$R" 050-4444-0006 >/dev/null
send gina fbport0
fell_back "a 200 OK whose SDP has port 0" gina "the 200 OK's SDP is not usable: port 0"
printf 'this is not SDP\r\n' >"$H_DIR/garbage.sdp"
hr_callee garbage 05044440007 --sdp "$H_DIR/garbage.sdp"
"$C" route map add "hank@$R" 050-4444-0007 >/dev/null
send hank fbgarbage
fell_back "a 200 OK with garbage for SDP" hank "the 200 OK's SDP is not usable"

# --- (d) a callee that rings for ever (SIPp) -------------------------------
RP=$(sip_free_port)
(cd "$H_DIR" && exec sipp -sf "$abs_top_srcdir/tests/sip/uas_ring.xml" -t u1 -i 127.0.0.1 -p "$RP" -m 1 \
    -nostdin -timeout 30s -timeout_error) >"$H_DIR/sipp-ring.log" 2>&1 &
ring=$!
h_register sipp "$ring"
hr_sipp_register 05044440008 "$RP"
"$C" route map add "ivan@$R" 050-4444-0008 >/dev/null
send ivan fbring
fell_back "a callee (SIPp) that rings for ever: CANCEL after sip_invite_timeout" ivan "no answer: timeout"

# --- (e) the peer drops the connection during DATA ---------------------------
tok=$(hr_token) fp=$(h_free_port)
mkdir -p "$H_DIR/fake"
h_spawn fake "$H_DIR/fake.log" python3 "$FAKE" "$fp" "$tok" "$H_DIR/fake" "drop-in-data,drop-after-dot,ok"
sip_wait_file "$H_DIR/fake.log" "^listening" 1 5
hr_sdp "$H_DIR/fake.sdp" "$fp" "$tok"
hr_callee fake 05044440009 --sdp "$H_DIR/fake.sdp"
"$C" route map add "judy@$R" 050-4444-0009 >/dev/null
# 6 MB: more than the kernel buffers on our side (tcp_wmem max 4 MB) and the
# peer's small window, so the write is still going on when the peer closes
head -c 4500000 /dev/urandom | base64 -w 76 >"$H_DIR/big.txt"
send judy fbdrop --body "$H_DIR/big.txt"
fell_back "the peer closes the connection during DATA (6 MB message, before the final dot)" judy \
    "SMTP over the call broke at"
tap_check "... the peer saw the token and dropped in DATA" grep -q "dropped in data" "$H_DIR/fake.log"

# --- (e2) the peer stops reading during DATA ----------------------------------
tok2=$(hr_token) fp2=$(h_free_port)
h_spawn fake "$H_DIR/fake2.log" python3 "$FAKE" "$fp2" "$tok2" "$H_DIR/fake" "hang-in-data"
sip_wait_file "$H_DIR/fake2.log" "^listening" 1 5
hr_sdp "$H_DIR/fake2.sdp" "$fp2" "$tok2"
hr_callee hang 05044440010 --sdp "$H_DIR/fake2.sdp"
"$C" route map add "ned@$R" 050-4444-0010 >/dev/null
send ned fbhang --body "$H_DIR/big.txt"
FB_LIMIT=9000 fell_back "a peer that stops reading during DATA (6 MB): after sip_smtp_timeout (5 s)" ned \
    "SMTP over the call broke at"
tap_check "... the peer had stopped reading" grep -q "^hanging" "$H_DIR/fake2.log"

# --- (f) dropped after the final dot: deferred, then once over SIP -----------
"$C" route map add "kim@$R" 050-4444-0009 >/dev/null
send kim afterdot --header "Subject: after the dot"
hs_wait_log "$MA" "$QID: to=<kim@$R>, relay=[^ ]*sipd.lmtp.*status=deferred .*connection lost after the final dot over SIP" 15
tap_check "a connection lost after the final dot: deferred, not fallen back" \
    grep -q "$QID: to=<kim@$R>, relay=[^ ]*sipd.lmtp.*status=deferred" "$MA"
h_postqueue -f >/dev/null 2>&1           # retry now (a loaded machine may wait a queue run)
hs_wait_log "$MA" "$QID: to=<kim@$R>, relay=[^ ]*sipd.lmtp.*status=sent (250 2.0.0 delivered over SIP" 20
tap_check "... the retry delivers it over SIP" grep -q "$QID: to=<kim@$R>, .*status=sent (250 2.0.0 delivered over SIP" "$MA"
tap_check "... and it never went the normal way (kim's maildir at site B is empty)" test "$(hb_maildir_files kim)" = 0
tap_check "... the peer stored it once" test "$(grep -l 'Subject: after the dot' "$H_DIR/fake"/msg.* 2>/dev/null | wc -l)" = 1

# --- (g) site B's postlink-sipd killed ---------------------------------------
hs_kill "$HR_SIPD_B_PID" KILL
"$C" route map add "lee@$R" "$HR_NUMBER_B" >/dev/null
send lee fbkilled
fell_back "site B's postlink-sipd killed (its registration left at the SIP server)" lee ""

# --- (h) SIGKILL of site A's postlink-sipd at the fallback ---------------------
"$C" route map add "max@$R" 050-9999-0000 >/dev/null
for point in fallback-recorded fallback-pending; do
    hs_kill "$HR_SIPD_A_PID"
    hr_restart_sipd_a POSTLINK_SIPD_TEST_KILL=$point
    killed=$HR_SIPD_A_PID
    user=max
    [ $point = fallback-pending ] && user=dave
    n0=$(hb_maildir_files $user)
    send $user "kill-$point"
    end=$(( $(h__ms) + 10000 ))
    while h__alive "$killed" && [ "$(h__ms)" -lt $end ]; do sleep 0.05; done
    tap_check "$point: postlink-sipd killed itself at the test point" \
        sh -c '! kill -0 "$1" 2>/dev/null && grep -q "test point $2: SIGKILL" "$3"' _ "$killed" "$point" "$LA"
    calls=$(grep -c "INVITE sip:05099999990@\|INVITE sip:" "$LA")
    hr_restart_sipd_a
    hs_wait_log "$MA" "$QID: to=<$user@$R>, relay=[^ ]*sipd.lmtp.*status=sent" 20
    hb_wait_maildir_files $user $((n0 + 1)) 10 >/dev/null
    hr_wait_queues_empty 15 >/dev/null      # a second copy could still be on its way
    n=$(( $(hb_maildir_files $user) - n0 ))
    tap_check "$point: after the restart the retry is answered and the mail is at site B exactly once ($n)" test "$n" = 1
    tap_check "$point: ... and no second call was made for it" test "$(grep -c "INVITE sip:" "$LA")" = "$calls"
done
tap_check "fallback-recorded: the retry answers from the record (already sent)" \
    grep -q "status=sent (250 2.0.0 already sent the normal way: queued as" "$MA"

tap_check "site A's postlink-sipd is still running" h__alive "$HR_SIPD_A_PID"
tap_check "no sanitizer report in the sipd logs" eval '! grep -qE "runtime error|Sanitizer" "$LA" "$H_DIR"/sipd-b.log'
[ "$TAP_FAILED" = 0 ] || { tail -n 40 "$LA" | sed 's/^/# /'; hb_diag; }
tap_done
