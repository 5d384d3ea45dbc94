# demo-sip.sh -- the SIP story of ./demo.sh (sourced by it): a second
# private Postfix ("site B", remote.test on 127.0.0.2) and a private
# Kamailio join the demo; both sites run postlink-sipd, registered under
# their IP phone numbers.  A mail from alice to dave@remote.test goes over
# a SIP-established connection (the SIP messages are printed), and one to
# a number nobody registered falls back to the normal SMTP way.
. "$TOP/tests/harness/route.sh"
. "$TOP/tests/harness/sip.sh"
. "$TOP/tests/harness/sites.sh"

step "add SIP routing: postlink-route, Kamailio, site B (remote.test on 127.0.0.2), postlink-sipd at both sites"
if hb_init && hr_setup && hb_route_site_a_normally && h_postfix_reload && hr_start_route &&
    sip_start_kamailio; then
    ok "postlink-route in smtpd_milters; X-Postlink-Route mail goes to postlink-sipd (milter_header_checks FILTER)"
    ok "Kamailio (registrar and proxy) on 127.0.0.1:$POSTLINK_SIP_PORT"
else
    bad "site A's SIP routing did not start"
fi
# site A's postlink-sipd writes every SIP message it sends and receives to
# a file (sofia-sip's TPORT_DUMP; it runs as postlink_user)
mkdir -p "$H_DIR/sip-trace" && chown postlink "$H_DIR/sip-trace"
if hr_sipd_conf "$POSTLINK_CONF" "$HR_NUMBER_A" "127.0.0.1:$POSTLINK_SMTP_PORT" &&
    rm -f "$HR_SIPD_SOCK" &&
    h_spawn sipd-a "$H_DIR/sipd-a.log" env TPORT_DUMP="$H_DIR/sip-trace/site-a.dump" \
        "$TOP/build/agents/sip/postlink-sipd" -f -c "$POSTLINK_CONF" &&
    HR_SIPD_A_PID=$H_LAST_PID && hs__wait_socket "$HR_SIPD_SOCK" "$HR_SIPD_A_PID" &&
    hs_wait_log "$H_DIR/sipd-a.log" "registered .* at sip:" 10 && hb_start_siteb &&
    HR_CONF_B=$(hr_site_conf "$H_DIR/siteb-postlink") &&
    hr_sipd_conf "$HR_CONF_B" "$HR_NUMBER_B" "127.0.0.2:$HB_SIP_PORT" 127.0.0.2 &&
    hr_start_sipd b "$HR_CONF_B" "$H_DIR/siteb-postlink/sipd.lmtp"; then
    grep -h "registered .* at sip:" "$H_DIR/sipd-a.log" "$H_DIR/sipd-b.log" | grep -v 'sip: ' | show
    ok "site B: Postfix on 127.0.0.2 (MX $HB_SMTP_PORT, SIP hand-over $HB_SIP_PORT), postlink-sipd answering $HR_NUMBER_B"
else
    bad "site B or postlink-sipd did not start"
fi
"$CTL" route map add "remote.test" "$HR_NUMBER_B" | show
"$CTL" route map add "erin@remote.test" 050-9999-0000 | show
"$CTL" route test dave@remote.test | show

sip_send() {     # sip_send TO SUBJECT: alice over submission; prints the queue id
    swaks --server 127.0.0.1 --port "$POSTLINK_SUBMISSION_PORT" --auth-user "$POSTLINK_DEMO_USER" \
        --auth-password "$POSTLINK_DEMO_PASS" --from "$POSTLINK_DEMO_USER" --to "$1" \
        --header "Subject: $2" 2>&1 | sed -n 's/.*250 .*queued as \([0-9A-Za-z]*\).*/\1/p' | tail -1
}
lmtp_result() {  # lmtp_result QID RCPT: site A's Postfix result for RCPT from postlink-sipd
    local i
    for i in $(seq 1 150); do
        grep -q "$1: to=<$2>, relay=[^ ]*sipd.lmtp.*status=" "$H_DIR/postfix/maillog" && break
        sleep 0.1
    done
    grep "$1: to=<$2>, relay=[^ ]*sipd.lmtp.*status=" "$H_DIR/postfix/maillog" | tail -1 |
        sed 's/.*status=/status=/'
}

step "alice mails dave@remote.test: INVITE via Kamailio, 180, 200, ACK, SMTP over the negotiated TCP connection, BYE"
q=$(sip_send dave@remote.test "over SIP")
r=$(lmtp_result "$q" dave@remote.test)
printf '%s\n' "$r" | show
if grep -q "delivered over SIP" <<<"$r" && hb_wait_maildir_files dave 1 10 >/dev/null; then
    call=$(sed -n 's/.*(Call-ID \([0-9a-f]*@postlink\)).*/\1/p' <<<"$r")
    ok "the SIP messages of call $call, as site A's postlink-sipd sent and received them:"
    # the dump: "sent|recv N bytes to|from ADDR at TIME:" then the message;
    # print the start line of each message of this call, and the SDP
    awk -v c="$call" '
        function flush() { if (keep) { print hdr; print "  " start; if (sdp != "") print sdp } }
        /^(sent|recv) [0-9]+ bytes/ { flush(); hdr = $0; start = ""; sdp = ""; keep = 0; n = 0; next }
        { sub(/\r$/, "") }
        n == 0 && $0 != "" { start = $0; n = 1; next }
        /^Call-ID: / && index($0, c) { keep = 1 }
        /^[mca]=/ { sdp = sdp (sdp == "" ? "" : "\n") "    " $0 }
        END { flush() }' "$H_DIR/sip-trace/site-a.dump" | show
    f=$(hb_maildir_grep "over SIP" | head -1)
    ok "in dave's maildir at site B, handed over by site B's postlink-sipd to its SIP listener:"
    grep -E '^(Received|Subject):' "$f" | head -3 | show
else
    bad "the mail did not go over SIP"
fi

step "alice mails erin@remote.test, whose number nobody registered: the call fails (404), the mail goes the normal way"
q=$(sip_send erin@remote.test "falls back")
r=$(lmtp_result "$q" erin@remote.test)
printf '%s\n' "$r" | show
grep -h "$q: postlink-sipd:" "$H_DIR/sipd-a.log" | sed 's/^postlink\/sipd: //' | show
if grep -q "sent the normal way.*fallback from SIP" <<<"$r" && hb_wait_maildir_files erin 1 10 >/dev/null; then
    ok "delivered to erin by site B's MX listener, once: $(hb_maildir_files erin) message"
else
    bad "the fallback did not arrive"
fi
