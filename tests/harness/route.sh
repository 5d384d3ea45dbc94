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
route_country_code = 81
route_trusted_networks = ${HR_TRUSTED:-127.0.0.99}
CONF
    printf '/^X-Postlink-Route:/ FILTER %s\n' "$HR_FILTER" >"$H_ROUTE/milter_header_checks"
    H_POSTFIX_MAIN_EXTRA=${H_POSTFIX_MAIN_EXTRA/"smtpd_milters = unix:$H_SYNC/sync-milter.sock"/"smtpd_milters = unix:$H_ROUTE/route-milter.sock unix:$H_SYNC/sync-milter.sock"}
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
