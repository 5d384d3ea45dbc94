#!/usr/bin/env bash
# t_route_milter.sh -- postlink-route's decisions in a private Postfix
# (MX and submission listeners, sendmail(1) through non_smtpd_milters),
# with the tables made by postlinkctl.  Here milter_header_checks sends
# mail with a number to the sink (the SIP transport itself is tested in
# t_sip_*.sh): for every rule the test checks the milter's log line (the
# recipient, the number, the rule), X-Postlink-Route at the sink, and
# Postfix's "filter:" log line; and for mail without a number that it
# arrives untouched.  Rules: prefix in the address (before and after the
# @), in a header and in the body (trusted senders only: a stranger's
# number in the text is ignored); table rows by address, domain and
# wildcard (exact beats domain beats wildcard); keywords in the address,
# in a header, and in a base64 ISO-2022-JP body part (decoded, not raw
# bytes); a message with one routed and one normal recipient; local
# recipients never routed; a forged X-Postlink-Route removed; route_order
# honoured after a reload; and bad table input refused by postlinkctl.
set -u
. "${abs_top_srcdir:-.}/tests/integration/tap.sh"
. "$abs_top_srcdir/tests/harness/harness.sh"
. "$abs_top_srcdir/tests/harness/sync.sh"
. "$abs_top_srcdir/tests/harness/route.sh"

h_init || exit 1
h_start_sink && h_start_dovecot && hs_setup || { tap_fail "harness set up"; tap_done; exit 1; }
HR_FILTER="smtp:[127.0.0.1]:$H_SINK_PORT"
hr_setup && h_start_postfix && hs_start_milter && hr_start_route ||
    { tap_fail "Postfix, postlink-sync and postlink-route start"; tap_done; exit 1; }
tap_check "postlink-route starts and says its rule order" \
    hs_wait_log "$H_ROUTE/route.log" "postlink-route .*rules in the order prefix, map, keyword, country code 81"

C=$POSTLINKCTL D=$POSTLINK_DOMAIN U=$POSTLINK_DEMO_USER PW=$POSTLINK_DEMO_PASS
SUB=$POSTLINK_SUBMISSION_PORT MX=$POSTLINK_SMTP_PORT LOG=$H_ROUTE/route.log
KYOTO=$(printf '\xe4\xba\xac\xe9\x83\xbd\xe6\x94\xaf\xe5\xba\x97')    # 京都支店 in UTF-8

ok=1
"$C" route prefix add 050- >/dev/null || ok=0
"$C" route map add abc@efg.com 050-1234-5678 >/dev/null || ok=0
"$C" route map add efg.com 050-2222-1111 >/dev/null || ok=0
"$C" route map add muratec.co.jp '+81 50 2222 3333' >/dev/null || ok=0
"$C" route map add '*.com' 050-9999-0000 >/dev/null || ok=0
"$C" route keyword add KYOTOSITEN 050-1234-5678 >/dev/null || ok=0
"$C" route keyword add "$KYOTO" 050-4444-5555 >/dev/null || ok=0
tap_check "postlinkctl fills the tables" test $ok = 1
tap_check "the map lists the rows with canonical numbers" \
    jq_true 'map({key, number}) == [{key: "*.com", number: "05099990000"}, {key: "abc@efg.com", number: "05012345678"}, {key: "efg.com", number: "05022221111"}, {key: "muratec.co.jp", number: "05022223333"}]' \
    "$("$C" route map list --json)"
err=$("$C" route map add bad@example.org 050-12x 2>&1)
tap_check "a malformed number is refused with the reason (exit 64)" \
    bash -c '[ $1 = 64 ] && grep -q "only digits" <<<"$2"' _ $? "$err"
err=$("$C" route map add 'a b.example' 050-1234-5678 2>&1)
tap_check "a malformed key is refused with the reason" grep -q "not an address" <<<"$err"
err=$("$C" route prefix add 05x- 2>&1)
tap_check "a malformed prefix is refused" grep -q "only digits" <<<"$err"
tap_check "route test: the address rules" \
    sh -c '"$1" route test x@muratec.co.jp | grep -q "number 05022223333 by rule map:domain (muratec.co.jp)"' _ "$C"

# send PORT FROM TO NAME [swaks options]: sets QID and MID
send() {
    local port=$1 from=$2 to=$3 name=$4 out
    shift 4
    MID=$(hs_msgid "$name")
    out=$(hs_send "$port" "$from" "$to" --header "Message-Id: $MID" "$@")
    QID=$(sed -n 's/.*250 .*queued as \([0-9A-Za-z]*\).*/\1/p' <<<"$out" | tail -1)
    [ -n "$QID" ] || { tap_diag "not accepted: $name" "$(tail -n 5 <<<"$out")"; return 1; }
}
sub() { send "$SUB" "$U" "$@" --auth-user "$U" --auth-password "$PW"; }
mx() { send "$MX" "stranger@elsewhere.test" "$@"; }
# routed DESC RCPT NUMBER RULE: the last message went to the FILTER for RCPT
routed() {
    local f
    hs_wait_sink_grep "$MID" 1 >/dev/null || { tap_fail "$1 (not at the sink)"; return; }
    f=$(hs_sink_grep "$MID" | head -1)
    if grep -q "$QID: postlink-route: to=<$2> number=$3 rule=$4 " "$LOG" &&
        grep -q '^X-Postlink-Route: [0-9a-f]\{32\}' "$f" &&
        grep -q "$QID: milter-header-filter: header X-Postlink-Route: " "$H_DIR/postfix/maillog"; then
        tap_ok "$1"
    else
        tap_fail "$1"
        tap_diag "$(grep "$QID" "$LOG" "$H_DIR/postfix/maillog" | tail -n 5)"
    fi
}
# normal DESC: the last message arrived without a decision or a header
normal() {
    local f
    hs_wait_sink_grep "$MID" 1 >/dev/null || { tap_fail "$1 (not at the sink)"; return; }
    f=$(hs_sink_grep "$MID" | head -1)
    if ! grep -q "$QID: postlink-route: to=" "$LOG" && ! grep -qi '^X-Postlink-Route:' "$f" &&
        ! grep -q "$QID: milter-header-filter:" "$H_DIR/postfix/maillog"; then
        tap_ok "$1"
    else
        tap_fail "$1"
        tap_diag "$(grep "$QID" "$LOG" "$H_DIR/postfix/maillog" | tail -n 5)"
    fi
}

# --- prefix -----------------------------------------------------------------
sub 050-0000-9999@gw.example pfx1 && routed "prefix: a number before the @" 050-0000-9999@gw.example 05000009999 prefix:address
sub bob@05011112222.gw.example pfx2 && routed "prefix: a number after the @" bob@05011112222.gw.example 05011112222 prefix:address
sub amy@plain.example pfx3 --header "Subject: please call 050-7777-8888" &&
    routed "prefix: a number in a header of an authenticated sender" amy@plain.example 05077778888 prefix:header
sub amy@plain.example pfx4 --body "Our IP phone: +81 50 6666 7777 (Kyoto)" &&
    routed "prefix: a number (+81 form) in the body of an authenticated sender" amy@plain.example 05066667777 prefix:body
mx amy@relay.test pfx5 --header "Subject: please call 050-7777-8888" --body "or 050-6666-7777" &&
    normal "prefix: a stranger's numbers in the header and body are ignored"
sub amy@plain.example pfx6 --body "ring 03-1234-5678 or 0501234567899" &&
    normal "prefix: numbers without the prefix or of the wrong length are no numbers"

# --- map --------------------------------------------------------------------
sub abc@efg.com map1 && routed "map: an address row beats the domain and the wildcard" abc@efg.com 05012345678 map:address
sub xyz@efg.com map2 && routed "map: a domain row beats the wildcard" xyz@efg.com 05022221111 map:domain
sub s@muratec.co.jp map3 && routed "map: a domain row (+81 written)" s@muratec.co.jp 05022223333 map:domain
sub who@any.com map4 && routed "map: a wildcard row" who@any.com 05099990000 map:wildcard
mx amy@relay.com map5 && routed "map: table rows apply to a stranger's relayed mail" amy@relay.com 05099990000 map:wildcard

# --- keyword ----------------------------------------------------------------
mx kyotositen@relay.test kw1 && routed "keyword: in the recipient address" kyotositen@relay.test 05012345678 keyword:address
mx amy@relay.test kw2 --header "Subject: order for KyotoSiten" &&
    routed "keyword: in a header, any case, from a stranger" amy@relay.test 05012345678 keyword:header
body=$(printf 'Order for the %s branch, please.\n' "$KYOTO" | iconv -f UTF-8 -t ISO-2022-JP | base64)
cat >"$H_DIR/kw3.eml" <<EOF
From: stranger@elsewhere.test
To: amy@relay.test
Subject: order
Message-Id: <kw3.$$@test.invalid>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b1"

--b1
Content-Type: text/plain; charset=us-ascii

see the second part
--b1
Content-Type: text/plain; charset=ISO-2022-JP
Content-Transfer-Encoding: base64

$body
--b1--
EOF
tap_check "the keyword's bytes are not in the raw message (ISO-2022-JP, base64)" \
    sh -c '! grep -q "$1" "$2"' _ "$KYOTO" "$H_DIR/kw3.eml"
MID="<kw3.$$@test.invalid>"
out=$(swaks --server 127.0.0.1 --port "$MX" --from stranger@elsewhere.test --to amy@relay.test \
    --data "$H_DIR/kw3.eml" --timeout 20 2>&1)
QID=$(sed -n 's/.*250 .*queued as \([0-9A-Za-z]*\).*/\1/p' <<<"$out" | tail -1)
routed "keyword: in a base64 ISO-2022-JP body part, decoded" amy@relay.test 05044445555 keyword:body
tap_check "route test --message finds the same keyword" \
    sh -c '"$1" route test amy@relay.test --message "$2" --stranger | grep -q "number 05044445555 by rule keyword:body"' _ "$C" "$H_DIR/kw3.eml"

# --- per recipient, local recipients, forged header, no number --------------
send "$SUB" "$U" "abc@efg.com,amy@plain.example" split --auth-user "$U" --auth-password "$PW" &&
    routed "two recipients: the one with a number is routed..." abc@efg.com 05012345678 map:address
tap_check "... and the other is not" sh -c '! grep -q "$1: postlink-route: to=<amy@plain.example>" "$2"' _ "$QID" "$LOG"
sub "bob@$D" local1 --header "Subject: KYOTOSITEN" --body "050-7777-8888"
h_wait_maildir_files bob 1 >/dev/null
tap_check "a local recipient is never routed, whatever the message says" \
    sh -c '! grep -q "$1: postlink-route: to=" "$2"' _ "$QID" "$LOG"
mx amy@relay.test forged --header "X-Postlink-Route: 0123456789abcdef0123456789abcdef" &&
    normal "a stranger's X-Postlink-Route is removed; without a number the mail is untouched"
tap_check "... and the removal is logged" grep -q "$QID: postlink-route: removed 1 X-Postlink-Route" "$LOG"
sub amy@plain.example none1 --header "Subject: hello" --body "nothing to see" &&
    normal "mail without a number goes the normal way untouched"

# --- sendmail(1) ------------------------------------------------------------
MID=$(hs_msgid sm1)
printf 'From: alice@%s\nTo: 050-3333-2222@gw.example\nSubject: by sendmail\nMessage-Id: %s\n\nhi\n' \
    "$D" "$MID" >"$H_DIR/sm1.eml"
hr_sendmail "alice@$D" 050-3333-2222@gw.example "$H_DIR/sm1.eml"
hs_wait_sink_grep "$MID" 1 >/dev/null
tap_check "mail from sendmail(1) is routed by the same address rules" \
    grep -q "postlink-route: to=<050-3333-2222@gw.example> number=05033332222 rule=prefix:address" "$LOG"

# --- rule order, reloaded ---------------------------------------------------
sed -i '/^route_order/d' "$POSTLINK_CONF"
echo "route_order = keyword, map" >>"$POSTLINK_CONF"
kill -HUP "$HR_ROUTE_PID"
hs_wait_log "$LOG" "settings reloaded (order keyword,map)"
sub abc@efg.com order1 --header "Subject: =?UTF-8?B?$(printf %s "$KYOTO" | base64)?=" &&
    routed "after a reload with route_order = keyword, map: the keyword (in an RFC 2047 Subject) wins over the address row" abc@efg.com 05044445555 keyword:header
sub 050-0000-9999@other.example order2 && normal "... and the prefix rule, left out, is not used"

tap_check "postlink-route is still running" h__alive "$HR_ROUTE_PID"
tap_check "no sanitizer report in its log" eval '! grep -qE "runtime error|Sanitizer" "$LOG"'
[ "$TAP_FAILED" = 0 ] || { echo "# route log:"; tail -n 30 "$LOG" | sed 's/^/#   /'; }
tap_done
