# route.sh -- harness additions for capability 3 (routing relayed mail
# over SIP), sourced after harness.sh and sync.sh: the postlink-route
# milter and its Postfix wiring.  Call hr_setup after hs_setup and before
# h_start_postfix, then hr_start_route.
#   HR_FILTER   where milter_header_checks sends mail that has a number
#               (default: postlink-sipd's LMTP socket, lmtp:unix:...)
#   HR_RELAY_DOMAINS  domains strangers may relay to (default relay.test, relay.com)
#   HR_TRUSTED  route_trusted_networks (default 127.0.0.99: the test's
#               clients on 127.0.0.1 are strangers unless they authenticate)
# postlink-route is an smtpd milter (after sync's, before nothing: sync
# must stay the last filter) and the only non_smtpd milter, so mail from
# sendmail(1) is routed by the same rules.

hr_setup() {
    H_ROUTE=$H_SYNC
    export H_ROUTE HR_SIPD_SOCK=$H_SYNC/sipd.lmtp
    : "${HR_FILTER:=lmtp:unix:$HR_SIPD_SOCK}"
    cat >>"$POSTLINK_CONF" <<CONF
route_milter_socket = unix:$H_ROUTE/route-milter.sock
sip_lmtp_socket = $HR_SIPD_SOCK
route_country_code = 81
route_trusted_networks = ${HR_TRUSTED:-127.0.0.99}
CONF
    printf '/^X-Postlink-Route:/ FILTER %s\n' "$HR_FILTER" >"$H_ROUTE/milter_header_checks"
    # postlink-route goes before postlink-sync (sync must stay last)
    H_POSTFIX_MAIN_EXTRA=${H_POSTFIX_MAIN_EXTRA/" unix:$H_SYNC/sync-milter.sock"/" unix:$H_ROUTE/route-milter.sock unix:$H_SYNC/sync-milter.sock"}
    H_POSTFIX_MAIN_EXTRA="$H_POSTFIX_MAIN_EXTRA
non_smtpd_milters = unix:$H_ROUTE/route-milter.sock
milter_header_checks = regexp:$H_ROUTE/milter_header_checks
relay_domains = ${HR_RELAY_DOMAINS:-relay.test, relay.com}"
}

# hr_start_route: start (again) postlink-route; pid in HR_ROUTE_PID, log
# $H_ROUTE/route.log.
hr_start_route() {
    rm -f "$H_ROUTE/route-milter.sock"
    h_spawn route "$H_ROUTE/route.log" "$abs_top_builddir/milters/route/postlink-route" -f
    HR_ROUTE_PID=$H_LAST_PID
    hs__wait_socket "$H_ROUTE/route-milter.sock" "$HR_ROUTE_PID"
}

# hr_sendmail FROM TO FILE: submit FILE with the private Postfix's sendmail(1).
hr_sendmail() {
    sendmail -C "$H_DIR/postfix/etc" -f "$1" -- "$2" <"$3"
}

# hr_sipd_conf CONF NUMBER DELIVER_TO [MEDIA_ADDR]: append postlink-sipd's
# settings to CONF (after sip_start_kamailio): calls through the harness's
# Kamailio over TCP, registered under NUMBER, answered calls handed to
# DELIVER_TO (IP:PORT); its SIP port in HR_SIP_BIND_PORT.
hr_sipd_conf() {
    HR_SIP_BIND_PORT=$(sip_free_port) || return 1
    cat >>"$1" <<CONF
sip_server = sip:127.0.0.1:$POSTLINK_SIP_PORT;transport=tcp
sip_bind = sip:${4:-127.0.0.1}:$HR_SIP_BIND_PORT;transport=tcp
sip_domain = $POSTLINK_SIP_DOMAIN
sip_number = $2
sip_media_address = ${4:-127.0.0.1}
sip_deliver_to = $3
sip_invite_timeout = ${HR_INVITE_TIMEOUT:-3s}
sip_connect_timeout = 2s
sip_smtp_timeout = ${HR_SMTP_TIMEOUT:-10s}
${HR_SIPD_EXTRA-}
CONF
}

# hr_start_sipd NAME CONF SOCKET: start postlink-sipd with CONF; pid in
# HR_SIPD_PID, log $H_DIR/sipd-NAME.log; waits for its LMTP socket and, when
# it has a number, for its registration.
hr_start_sipd() {
    local log=$H_DIR/sipd-$1.log
    rm -f "$3"
    h_spawn "sipd-$1" "$log" "$abs_top_builddir/agents/sip/postlink-sipd" -f -c "$2"
    HR_SIPD_PID=$H_LAST_PID
    hs__wait_socket "$3" "$HR_SIPD_PID" || return 1
    if grep -q '^sip_number = .' "$2"; then
        hs_wait_log "$log" "registered .* at sip:" 10 || return 1
    fi
}

# hr_site_conf DIR: a postlink.conf and store of its own (another site's
# postlink-sipd); prints the conf path.
hr_site_conf() {
    mkdir -p "$1"
    chmod 0711 "$1"
    cat >"$1/postlink.conf" <<CONF
db_home = $1/db
enabled_domains = ${HB_DOMAIN:-remote.test}
sip_lmtp_socket = $1/sipd.lmtp
reinject_url = smtp://127.0.0.1:1
route_country_code = 81
CONF
    "$POSTLINKCTL" -c "$1/postlink.conf" init >"$1/init.log" 2>&1 || { cat "$1/init.log" >&2; return 1; }
    echo "$1/postlink.conf"
}

# hr_two_sites: the whole capability-3 setup (after h_init; needs
# tests/harness/{sync,sip,sites}.sh sourced): the sink, Dovecot, site A
# (harness Postfix with postlink-sync, postlink-route and postlink-sipd
# registered as HR_NUMBER_A; remote.test the normal way to site B's MX),
# Kamailio, site B on 127.0.0.2 (its own Postfix, no milters, and
# postlink-sipd registered as HR_NUMBER_B, handing calls to its SIP
# listener with XCLIENT).  Pids: HR_SIPD_A_PID, HR_SIPD_B_PID; confs
# $POSTLINK_CONF and HR_CONF_B; logs $H_DIR/sipd-a.log, sipd-b.log.
HR_NUMBER_A=050-1111-0001 HR_NUMBER_B=050-2222-0002
hr_two_sites() {
    HS_PEER_ADDR=${HS_PEER_ADDR:-127.0.0.3}     # site B (127.0.0.2) is no sync peer
    hb_init && h_start_sink && h_start_dovecot && hs_setup && hr_setup &&
        hb_route_site_a_normally && h_start_postfix && hs_start_milter && hr_start_route ||
        { h__say "site A did not start"; return 1; }
    sip_start_kamailio || return 1
    hr_sipd_conf "$POSTLINK_CONF" "$HR_NUMBER_A" "127.0.0.1:$POSTLINK_SMTP_PORT" &&
        hr_start_sipd a "$POSTLINK_CONF" "$HR_SIPD_SOCK" || { h__say "postlink-sipd (A) did not start"; return 1; }
    HR_SIPD_A_PID=$HR_SIPD_PID
    hb_start_siteb || return 1
    HR_CONF_B=$(hr_site_conf "$H_DIR/siteb-postlink") &&
        hr_sipd_conf "$HR_CONF_B" "$HR_NUMBER_B" "127.0.0.2:$HB_SIP_PORT" 127.0.0.2 &&
        hr_start_sipd b "$HR_CONF_B" "$H_DIR/siteb-postlink/sipd.lmtp" ||
        { h__say "postlink-sipd (B) did not start"; return 1; }
    HR_SIPD_B_PID=$HR_SIPD_PID
    export HR_CONF_B HR_SIPD_A_PID HR_SIPD_B_PID
}

# hr_restart_sipd_a [ENV=VALUE...]: postlink-sipd of site A again (after a
# kill), with extra environment for the new process.
hr_restart_sipd_a() {
    rm -f "$HR_SIPD_SOCK"
    h_spawn sipd-a "$H_DIR/sipd-a.log" env "$@" "$abs_top_builddir/agents/sip/postlink-sipd" -f -c "$POSTLINK_CONF"
    HR_SIPD_A_PID=$H_LAST_PID
    hs__wait_socket "$HR_SIPD_SOCK" "$HR_SIPD_A_PID"
}

# hr_send_dsn PORT USER PASS TO MSGID NOTIFY: one message with RCPT
# NOTIFY= (swaks 20201014 has no DSN options), authenticated; prints the
# queue id Postfix gave it.
hr_send_dsn() {
    python3 - "$@" <<'PY'
import smtplib, sys
port, user, pw, rcpt, mid, notify = sys.argv[1:]
s = smtplib.SMTP("127.0.0.1", int(port), timeout=20)
s.ehlo("client.test")
s.login(user, pw)
msg = ("From: %s\r\nTo: %s\r\nSubject: dsn test\r\nMessage-Id: %s\r\n\r\nplease confirm\r\n"
       % (user, rcpt, mid))
s.mail(user)
code, text = s.rcpt(rcpt, ["NOTIFY=" + notify])
if code != 250:
    sys.exit("RCPT: %d %s" % (code, text))
code, text = s.data(msg.encode())
print(text.decode().rsplit(" ", 1)[-1])
s.quit()
PY
}

# hr_callee NAME NUMBER [pl-sip-call answer options]: a test callee (the
# SIP user agent alone) registered under NUMBER; log $H_DIR/callee-NAME.log.
hr_callee() {
    local name=$1 num=$2 log=$H_DIR/callee-$1.log
    shift 2
    h_spawn "callee-$name" "$log" "$abs_top_builddir/tests/tools/pl-sip-call" answer \
        --proxy "sip:127.0.0.1:$POSTLINK_SIP_PORT;transport=tcp" \
        --bind "sip:127.0.0.1:$(sip_free_port);transport=tcp" --domain "$POSTLINK_SIP_DOMAIN" \
        --number "$num" "$@"
    sip_wait_file "$log" '^registered' 1 10
}

# hr_sdp FILE PORT TOKEN [SETUP]: an answer SDP for a test callee.
hr_sdp() {
    printf 'v=0\r\no=test 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=application %s TCP smtp\r\na=setup:%s\r\na=connection:new\r\na=postlink-token:%s\r\n' \
        "$2" "${4:-passive}" "$3" >"$1"
}

# hr_token: 64 random hex digits.
hr_token() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

# hr_sipp_register NUMBER UAS_PORT: register a SIPp callee's contact
# (SIPp cannot register and answer in one scenario: tests/sip/register.xml).
hr_sipp_register() {
    (cd "$H_DIR" && sipp "127.0.0.1:$POSTLINK_SIP_PORT" -sf "$abs_top_srcdir/tests/sip/register.xml" -t u1 \
        -i 127.0.0.1 -m 1 -key number "$1" -key domain "$POSTLINK_SIP_DOMAIN" -key contact_port "$2" \
        -nostdin -timeout 10s -timeout_error >>"$H_DIR/sipp-register.log" 2>&1) &&
        sip_wait_file "$H_DIR/kamailio/kamailio.log" "saved location for $1: .*127\\.0\\.0\\.1:$2" 1 5
}

# hr_wait_queues_empty [TIMEOUT_S]: until both sites' queues are empty (a
# copy still on its way could not be counted yet).
hr_wait_queues_empty() {
    local end=$(( $(h__ms) + ${1:-15} * 1000 ))
    until h_postqueue -p 2>/dev/null | grep -q 'Mail queue is empty' &&
          hb_postqueue -p 2>/dev/null | grep -q 'Mail queue is empty'; do
        [ "$(h__ms)" -ge $end ] && { h__say "queues not empty"; h_postqueue -p >&2; hb_postqueue -p >&2; return 1; }
        sleep 0.05
    done
}
