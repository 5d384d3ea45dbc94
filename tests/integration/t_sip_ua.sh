#!/usr/bin/env bash
# t_sip_ua.sh -- capability 3, SIP signalling: postlink-sipd's SIP user agent
# (agents/sip/sip_ua, driven by tests/tools/pl-sip-call) against a real
# Kamailio and SIPp.  A callee registers its number; a caller's INVITE goes
# through Kamailio, 180, 200, ACK, BYE 200, with our own SDP carried
# byte-exact both ways, over TCP and UDP; an unregistered number gets 404;
# a callee's 488 reaches the caller; a callee that only rings is CANCELed
# after invite_timeout_ms; with digest auth in Kamailio the right password
# registers and calls and a wrong one fails with 401/407; an INVITE that
# bypasses Kamailio gets 403 and never reaches the application; SIPp can be
# the callee with its own SDP; max_incoming refuses the excess with 486; the
# callee can hang up.  Also measures INVITE->200 and BYE times.
set -u
. "${abs_top_srcdir:-.}/tests/integration/tap.sh"
. "$abs_top_srcdir/tests/harness/harness.sh"
. "$abs_top_srcdir/tests/harness/sip.sh"

for p in kamailio sipp; do
    command -v $p >/dev/null || { tap_fail "$p is installed (scripts/install-deps.sh)"; tap_done; exit 1; }
done
h_init || exit 1
B=$abs_top_builddir/tests/tools/pl-sip-call
D=$H_DIR
cp "$abs_top_srcdir"/tests/sip/*.xml "$D/"
cd "$D" || exit 1                   # SIPp writes its traces to the cwd
TOK_A=$(openssl rand -hex 32) TOK_B=$(openssl rand -hex 32) TOK_S=$(openssl rand -hex 32)
OFFER_PORT=$(h_free_port)
printf 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=postlink\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=application %s TCP smtp\r\na=setup:actpass\r\na=connection:new\r\na=postlink-token:%s\r\n' \
    "$OFFER_PORT" "$TOK_A" >"$D/offer.sdp"
printf 'v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=postlink\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=application 9 TCP smtp\r\na=setup:active\r\na=connection:new\r\na=postlink-token:%s\r\n' \
    "$TOK_B" >"$D/answer.sdp"

sip_start_kamailio || { tap_fail "Kamailio starts"; tap_done; exit 1; }
tap_ok "Kamailio starts on 127.0.0.1:$POSTLINK_SIP_PORT (UDP and TCP)"
K=$D/kamailio/kamailio.log
proxy() { echo "sip:127.0.0.1:$POSTLINK_SIP_PORT;transport=$1"; }

# callee NAME TRANSPORT NUMBER [pl-sip-call options]: a registering callee
# in the background (output $D/NAME.out, log $D/NAME.log, port CALLEE_PORT_NAME,
# pid CALLEE_PID_NAME); returns once it printed registered / register-failed.
callee() {
    local name=$1 t=$2 num=$3 port
    shift 3
    port=$(sip_free_port) || return 1
    mkdir -p "$D/$name.offers"
    h_spawn callee "$D/$name.log" sh -c 'exec "$0" "$@" >"'"$D/$name.out"'"' "$B" answer \
        --proxy "$(proxy "$t")" --bind "sip:127.0.0.1:$port;transport=$t" --number "$num" \
        --domain "$POSTLINK_SIP_DOMAIN" --sdp "$D/answer.sdp" --offer-dir "$D/$name.offers" "$@"
    printf -v "CALLEE_PID_$name" '%s' "$H_LAST_PID"
    printf -v "CALLEE_PORT_$name" '%s' "$port"
    sip_wait_file "$D/$name.out" '^(registered|register-failed)' 1 15
}
callee_stop() {
    local v=CALLEE_PID_$1
    kill "${!v}" 2>/dev/null
    sip_wait_file "$D/$1.out" '^stopped' 1 10
    wait "${!v}" 2>/dev/null
}
# caller NAME TRANSPORT NUMBER [options]: one call; output $D/NAME.out,
# answer body $D/NAME.answer, log $D/NAME.log; status in CALL_RC.
caller() {
    local name=$1 t=$2 num=$3
    shift 3
    timeout 60 "$B" call --proxy "$(proxy "$t")" --bind "sip:127.0.0.1:0;transport=$t" \
        --number "$num" --domain "$POSTLINK_SIP_DOMAIN" --sdp "$D/offer.sdp" \
        --answer-out "$D/$name.answer" "$@" >"$D/$name.out" 2>"$D/$name.log"
    CALL_RC=$?
}
val() { sed -n "s/^$2 //p" "$D/$1.out" | head -n 1; }     # val NAME KEY
has() { grep -qE -- "$2" "$D/$1.out"; }

# --- (a) a complete call through Kamailio, TCP and UDP ------------------------
n=0
for t in tcp udp; do
    n=$((n + 1))
    num=0502222333$n
    callee "a_$t" "$t" "$num" || { tap_fail "$t: callee registers"; continue; }
    tap_check "$t: the callee registers $num (registrar said 200)" has "a_$t" '^registered$'
    caller "c_$t" "$t" "$num"
    cid=$(val "c_$t" call-id)
    tap_check "$t: INVITE -> 200 OK through Kamailio (Call-ID $cid)" \
        test "$(val "c_$t" status)" = "200 OK" -a "$CALL_RC" = 0
    tap_check "$t: the caller saw 180 Ringing before the 200" \
        eval 'test "$(val "c_$t" ringing)" = 1 && test "$(val "c_$t" ms-180)" -ge 0 &&
              test "$(val "c_$t" ms-180)" -le "$(val "c_$t" ms-200)"'
    tap_check "$t: the answer SDP the caller got is byte for byte the callee's" \
        cmp -s "$D/c_$t.answer" "$D/answer.sdp"
    tap_check "$t: the offer SDP the callee got is byte for byte the caller's" \
        cmp -s "$D/a_$t.offers/$cid.sdp" "$D/offer.sdp"
    tap_check "$t: the callee saw the INVITE from Kamailio for its number" \
        has "a_$t" "^invite $cid from .* src 127\\.0\\.0\\.1:[0-9]+ transport $t user $num\$"
    tap_check "$t: the 200 was ACKed, through Kamailio (its log has the ACK)" \
        sip_wait_file "$K" "\\{1 $cid\\}.*request ACK sip:$num@127\\.0\\.0\\.1:" 1 5
    tap_check "$t: BYE answered 200 and the callee reports the call ended by the peer" \
        eval 'has "c_$t" "^bye 200 ms [0-9]+\$" && sip_wait_file "$D/a_$t.out" "^call-end $cid by-peer\$" 1 5'
    callee_stop "a_$t"
    tap_check "$t: the callee unregisters when it stops (Kamailio forgets it: 404)" \
        eval 'caller "c2_$t" "$t" "$num"; test "$(val "c2_$t" status)" = "404 Not Found"'
done

# --- (b) a number nobody registered -------------------------------------------
caller b tcp 0999000111
tap_check "a call to an unregistered number gets 404 Not Found from Kamailio, at once" \
    eval 'test "$(val b status)" = "404 Not Found" -a "$CALL_RC" = 2 -a "$(val b ms-200)" -lt 2000 &&
          ! has b "^answer-begin"'

# --- (c) the callee refuses with 488 --------------------------------------------
callee c488 tcp 0502222444 --status 488
caller c tcp 0502222444
tap_check "a callee answering 488 makes the caller's result 488 Not Acceptable Here" \
    eval 'test "$(val c status)" = "488 Not Acceptable Here" && has c488 "^answer 488\$" &&
          ! has c "^bye "'
callee_stop c488
tap_check "no call-end for a call that was never up" eval '! has c488 "^call-end"'

# --- (d) a callee that only rings: local timeout and CANCEL --------------------
sipp_run() {    # sipp_run NAME ARGS...: SIPp in the background, pid SIPP_PID
    local name=$1
    shift
    h_spawn sipp "$D/sipp-$name.log" sipp "$@" -nostdin -trace_err -timeout 30s -timeout_error
    SIPP_PID=$H_LAST_PID
}
sipp_wait() {   # sipp_wait PID: its exit status (bounded 30 s)
    local end=$(( $(h__ms) + 30000 ))
    while h__alive "$1" && [ "$(h__ms)" -lt $end ]; do sleep 0.05; done
    wait "$1"
}
sipp_register() {   # sipp_register NUMBER UAS_PORT: a REGISTER for a SIPp callee
    sipp "127.0.0.1:$POSTLINK_SIP_PORT" -sf "$D/register.xml" -t u1 -i 127.0.0.1 -m 1 \
        -key number "$1" -key domain "$POSTLINK_SIP_DOMAIN" -key contact_port "$2" \
        -nostdin -timeout 10s -timeout_error >>"$D/sipp-register.log" 2>&1 &&
        sip_wait_file "$K" "saved location for $1: .*127\\.0\\.0\\.1:$2" 1 5
}
RP=$(sip_free_port)
sipp_run ring -sf "$D/uas_ring.xml" -t u1 -i 127.0.0.1 -p "$RP" -m 1
RING_PID=$SIPP_PID
sipp_register 0502222555 "$RP" || tap_diag "SIPp REGISTER for the ringing callee failed"
t0=$(h__ms)
caller d tcp 0502222555 --timeout-ms 1500
el=$(( $(h__ms) - t0 ))
tap_check "a callee that rings for ever: local result 0 'timeout' after 180 (${el} ms)" \
    eval 'test "$(val d status)" = "0 timeout (no answer within 1500 ms)" -a "$(val d ringing)" = 1'
tap_check "bounded by invite_timeout_ms: over after 1500..3000 ms, the 487 to our CANCEL came (ms-final $(val d ms-200))" \
    eval 'test "$(val d ms-200)" -ge 1500 -a "$(val d ms-200)" -le 3000'
sipp_wait "$RING_PID"
tap_check "the callee (SIPp) got our CANCEL and finished its scenario" test $? = 0
tap_check "Kamailio relayed the CANCEL" grep -q "{1 $(val d call-id)}.*request CANCEL" "$K"

# --- (g) SIPp as the callee with its own SDP ------------------------------------
AP=$(sip_free_port) SP=$(h_free_port)
sipp_run answer -sf "$D/uas_answer.xml" -t u1 -i 127.0.0.1 -p "$AP" -m 1 -key port "$SP" -key token "$TOK_S"
ANS_PID=$SIPP_PID
sipp_register 0502222666 "$AP" || tap_diag "SIPp REGISTER for the answering callee failed"
caller g tcp 0502222666
tap_check "SIPp (registered by a second, REGISTER-only SIPp) answers our call with 200" \
    eval 'test "$(val g status)" = "200 OK" -a "$(val g ringing)" = 1'
tap_check "its SDP reaches us: m=application $SP TCP smtp, passive, new, its token" \
    eval 'grep -q "^m=application $SP TCP smtp" "$D/g.answer" && grep -q "^a=setup:passive" "$D/g.answer" &&
          grep -q "^a=connection:new" "$D/g.answer" && grep -q "^a=postlink-token:$TOK_S" "$D/g.answer"'
tap_check "our BYE is answered 200 by SIPp" has g '^bye 200 '
sipp_wait "$ANS_PID"
tap_check "SIPp's callee scenario (INVITE, ACK, BYE) completed" test $? = 0

# --- (f) an INVITE that bypasses Kamailio ----------------------------------------
callee f_tcp tcp 0502222777
callee f_udp udp 0502222888
sipp "127.0.0.1:$CALLEE_PORT_f_tcp" -sf "$D/uac_direct.xml" -t t1 -i 127.0.0.2 -m 1 -s 0502222777 \
    -nostdin -timeout 10s -timeout_error >"$D/sipp-direct-tcp.log" 2>&1
tap_check "tcp: an INVITE sent straight to the callee from 127.0.0.2 gets 403" test $? = 0
sipp "127.0.0.1:$CALLEE_PORT_f_udp" -sf "$D/uac_direct.xml" -t u1 -i 127.0.0.2 -m 1 -s 0502222888 \
    -nostdin -timeout 10s -timeout_error >"$D/sipp-direct-udp.log" 2>&1
tap_check "udp: the same from 127.0.0.2 gets 403" test $? = 0
sipp "127.0.0.1:$CALLEE_PORT_f_udp" -sf "$D/uac_direct.xml" -t u1 -i 127.0.0.1 -m 1 -s 0502222888 \
    -nostdin -timeout 10s -timeout_error >"$D/sipp-direct-udp1.log" 2>&1
tap_check "udp: and from 127.0.0.1 but not Kamailio's port: 403 too" test $? = 0
tap_check "none of them reached the application (no invite line), each was logged" \
    eval '! has f_tcp "^invite" && ! has f_udp "^invite" &&
          test "$(grep -c "not from the SIP server: 403" "$D/f_tcp.log" "$D/f_udp.log" | paste -sd" ")" = "$D/f_tcp.log:1 $D/f_udp.log:2"'
caller f2 udp 0502222888
tap_check "the UDP callee still takes a call that comes through Kamailio" \
    eval 'test "$(val f2 status)" = "200 OK" && has f_udp "^invite "'

# --- numbers: INVITE->200 and BYE round trip, sequential and concurrent --------
caller m tcp 0502222777 --count 20
tap_check "20 sequential calls over TCP all answered 200 and BYE 200" has m '^summary calls 20 ok 20 '
tap_diag "TCP via Kamailio: $(grep ^summary "$D/m.out")"
caller m_udp udp 0502222888 --count 20
tap_diag "UDP via Kamailio: $(grep ^summary "$D/m_udp.out")"
caller p tcp 0502222777 --count 5 --parallel 4
tap_check "4 threads placing 5 calls each at the same time: all 20 answered and hung up" \
    has p '^summary calls 20 ok 20 '
tap_diag "4 threads x 5 calls: $(grep ^summary "$D/p.out")"
callee_stop f_tcp
callee_stop f_udp

# --- max_incoming, and the callee hanging up --------------------------------------
callee ch tcp 0502222121 --max-incoming 1
caller h tcp 0502222121 --parallel 4 --hold-ms 1500
tap_check "max_incoming 1: of 4 simultaneous calls one is answered, 3 get 486 Busy Here" \
    eval 'test "$(grep -c "^status 200 OK" "$D/h.out")" = 1 -a "$(grep -c "^status 486 Busy Here" "$D/h.out")" = 3'
tap_check "the refusals are logged once for the burst" \
    test "$(grep -c 'max_incoming): refusing' "$D/ch.log")" = 1
caller h2 tcp 0502222121
tap_check "once the call is over it takes calls again (and says how many it refused)" \
    eval 'test "$(val h2 status)" = "200 OK" && grep -q "accepting calls again after refusing 3" "$D/ch.log"'
callee_stop ch
callee ci tcp 0502222122 --hangup-after 300
caller i tcp 0502222122 --hold-ms 1500
cid=$(val i call-id)
tap_check "the callee hangs up (pl_sip_hangup_incoming): its BYE is answered 200, call-end by-us" \
    eval 'sip_wait_file "$D/ci.out" "^hangup $cid bye 200\$" 1 5 && has ci "^call-end $cid by-us\$"'
tap_check "the caller sees the call ended by the peer; its own hangup has nothing left to do (bye -1)" \
    eval 'has i "^call-end $cid by-peer\$" && has i "^bye -1 "'
callee_stop ci

# --- (e) digest authentication ---------------------------------------------------
sip_stop_kamailio
export KAMAILIO_AUTH_USER=pl-auth KAMAILIO_AUTH_PASSWORD=$(openssl rand -hex 8)
sip_start_kamailio || { tap_fail "Kamailio with digest auth starts"; tap_done; exit 1; }
K=$D/kamailio/kamailio.log
GOOD=$KAMAILIO_AUTH_USER:$KAMAILIO_AUTH_PASSWORD BAD=$KAMAILIO_AUTH_USER:wrong-password
callee e_bad tcp 0502222999 --auth "$BAD"
tap_check "auth: REGISTER with a wrong password fails: register-failed 401" has e_bad '^register-failed 401$'
grep -q 'registration of .* failed: 401' "$D/e_bad.log"
tap_check "and the log says so clearly" test $? = 0
callee e_none tcp 0502222999
tap_check "auth: REGISTER without credentials fails: 401" has e_none '^register-failed 401$'
callee e tcp 0502222999 --auth "$GOOD"
tap_check "auth: REGISTER with the right password is accepted (after the 401 challenge)" \
    eval 'has e "^registered\$" && grep -q "digest authentication as $KAMAILIO_AUTH_USER" "$D/e.log"'
caller e1 tcp 0502222999 --auth "$GOOD"
tap_check "auth: INVITE with the right password (407 challenge answered) -> 200, BYE 200" \
    eval 'test "$(val e1 status)" = "200 OK" && has e1 "^bye 200 "'
caller e2 tcp 0502222999 --auth "$BAD"
tap_check "auth: INVITE with a wrong password ends with 407" \
    test "$(val e2 status)" = "407 Proxy Authentication Required"
caller e3 tcp 0502222999
tap_check "auth: INVITE without credentials: 407" \
    test "$(val e3 status)" = "407 Proxy Authentication Required"
callee_stop e
tap_check "every user agent shut sofia-sip down cleanly (none was forced to stop)" \
    eval '! grep -l "without a complete sofia-sip shutdown" "$D"/*.log'

tap_done
