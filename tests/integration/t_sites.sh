#!/usr/bin/env bash
# t_sites.sh -- the two-site harness (tests/harness/sites.sh) that
# capability 3's tests build on: site A (the harness's Postfix, set up by
# sync.sh as those tests use it) sends to site B (a second Postfix on
# 127.0.0.2) the normal SMTP way.  Checks: delivery into site B's
# virtual(8) maildir with a Received header from 127.0.0.1 on its MX
# listener; an unknown recipient refused by site B at RCPT, bounced to
# the sender at site A; a NOTIFY=SUCCESS DSN from site B back at site A;
# site B's SIP listener lets 127.0.0.2 set the peer with XCLIENT, after
# which its normal checks apply to that peer (relay denied, unknown user
# refused, own user accepted); XCLIENT refused from 127.0.0.1; and
# h_stop_all stops site B too.
set -u
. "${abs_top_srcdir:-.}/tests/integration/tap.sh"
. "$abs_top_srcdir/tests/harness/harness.sh"
. "$abs_top_srcdir/tests/harness/sync.sh"
. "$abs_top_srcdir/tests/harness/sites.sh"

h_init || exit 1
T0=$(h__ms)
hb_init && h_start_sink && h_start_dovecot && hs_setup && hb_route_site_a_normally ||
    { tap_fail "harness set up"; tap_done; exit 1; }
h_start_postfix && hs_start_milter && hb_start_siteb ||
    { tap_fail "site A, postlink-sync and site B start"; tap_done; exit 1; }
tap_diag "both sites up in $(( $(h__ms) - T0 )) ms"

tm=$(postconf -c "$H_DIR/postfix/etc" -h transport_maps)
tap_check "site A has one transport_maps with site B's MX and sync's entry" \
    bash -c '[ "$(grep -c "^transport_maps" "$1")" = 1 ] &&
        grep -qF "$2=smtp:[127.0.0.2]:$3" <<<"$4" && grep -qF "sync.postlink.invalid=lmtp:" <<<"$4"' \
    _ "$H_DIR/postfix/etc/main.cf" "$HB_DOMAIN" "$HB_SMTP_PORT" "$tm"

U=$POSTLINK_DEMO_USER PW=$POSTLINK_DEMO_PASS SUB=$POSTLINK_SUBMISSION_PORT
ALICE_MD=$(h__maildir alice)

# unfold FILE: the header section with continuation lines joined.
unfold() { sed -e '/^\r\{0,1\}$/q' "$1" | tr -d '\r' | awk '/^[ \t]/ { sub(/^[ \t]+/, " "); printf "%s", $0; next } NR > 1 { print "" } { printf "%s", $0 } END { print "" }'; }

# alice_grep PATTERN...: alice's files (site A) containing every PATTERN.
alice_grep() {
    local f p ok
    for f in "$ALICE_MD"/new/* "$ALICE_MD"/cur/*; do
        [ -f "$f" ] || continue
        ok=1
        for p in "$@"; do grep -qF -- "$p" "$f" || { ok=0; break; }; done
        [ $ok = 1 ] && echo "$f"
    done
}
# wait_alice TIMEOUT PATTERN...: until one of alice's files has them all.
wait_alice() {
    local end=$(( $(h__ms) + $1 * 1000 ))
    shift
    until [ -n "$(alice_grep "$@")" ]; do
        [ "$(h__ms)" -ge $end ] && { h__say "timeout: no message for alice with: $*"; h_diag; hb_diag; return 1; }
        sleep 0.05
    done
}

# (1) the normal SMTP path: submission at site A -> site B's MX -> maildir
M1="t_sites normal $RANDOM$RANDOM"
out=$(hs_send "$SUB" "$U" "dave@$HB_DOMAIN" --auth-user "$U" --auth-password "$PW" --header "Subject: $M1")
tap_check "site A accepts mail for dave@$HB_DOMAIN on submission" grep -q '^<-  250 2.0.0 Ok: queued' <<<"$out"
tap_check "it lands in dave's maildir at site B" hb_wait_maildir_files dave 1 10
f=$(hb_maildir_grep "Subject: $M1")
rcv=$(unfold "$f" | grep -m1 '^Received: .*by mail\.'"$HB_DOMAIN")
tap_diag "$rcv"
tap_check "site B's Received header: from 127.0.0.1, by mail.$HB_DOMAIN with ESMTP" \
    grep -Eq '^Received: from [^ ]+ \(unknown \[127\.0\.0\.1\]\) by mail\.remote\.test \(Postfix\) with ESMTP id [0-9A-Za-z]+ for <dave@remote\.test>' <<<"$rcv"
qid=$(sed -E 's/.* with ESMTP id ([0-9A-Za-z]+).*/\1/' <<<"$rcv")
tap_check "site B's MX listener (not the SIP one) received it from 127.0.0.1" \
    grep -Eq " postfix-b/smtpd\[[0-9]+\]: $qid: client=unknown\[127\.0\.0\.1\]" "$HB_DIR/maillog"
tap_check "site B's virtual(8) delivered it to the maildir" \
    grep -Eq " postfix-b/virtual\[[0-9]+\]: $qid: to=<dave@remote\.test>.* status=sent \(delivered to maildir\)" "$HB_DIR/maillog"
tap_check "site B's maildir file belongs to the virtual uid" \
    test "$(stat -c %U "$f")" = "$(id -un postlink 2>/dev/null || echo nobody)"

# (2) an unknown user: site A accepts, site B refuses at RCPT, alice gets the bounce
M2="t_sites unknown $RANDOM$RANDOM"
out=$(hs_send "$SUB" "$U" "nobody@$HB_DOMAIN" --auth-user "$U" --auth-password "$PW" --header "Subject: $M2")
tap_check "site A accepts mail for nobody@$HB_DOMAIN" grep -q '^<-  250 2.0.0 Ok: queued' <<<"$out"
tap_check "the bounce reaches alice at site A, naming nobody@$HB_DOMAIN and 550 5.1.1" \
    wait_alice 10 "$M2" "nobody@$HB_DOMAIN" "550 5.1.1" "Action: failed"
tap_check "site B logged the refusal at RCPT" \
    grep -Eq "postfix-b/smtpd\[[0-9]+\]: NOQUEUE: reject: RCPT from unknown\[127\.0\.0\.1\]: 550 5\.1\.1 <nobody@remote\.test>" "$HB_DIR/maillog"

# (3) NOTIFY=SUCCESS (this swaks has no DSN options: smtplib)
M3="t_sites dsn $RANDOM$RANDOM"
t=$(h__ms)
out=$(python3 - "$SUB" "$U" "$PW" "erin@$HB_DOMAIN" "$M3" <<'PY' 2>&1
import smtplib, sys
port, user, pw, rcpt, subj = sys.argv[1:]
s = smtplib.SMTP("127.0.0.1", int(port), timeout=20)
s.ehlo("client.test")
s.login(user, pw)
msg = "From: %s\r\nTo: %s\r\nSubject: %s\r\n\r\nplease confirm\r\n" % (user, rcpt, subj)
s.sendmail(user, [rcpt], msg, rcpt_options=["NOTIFY=SUCCESS"])
print("sent")
s.quit()
PY
)
tap_check "site A accepts mail for erin@$HB_DOMAIN with NOTIFY=SUCCESS" test "$out" = sent
tap_check "it lands in erin's maildir at site B" hb_wait_maildir_files erin 1 10
tap_check "site B's \"delivered\" DSN reaches alice at site A" \
    wait_alice 10 "$M3" "Reporting-MTA: dns; mail.$HB_DOMAIN" "Action: delivered" "erin@$HB_DOMAIN"
tap_diag "DSN at alice $(( $(h__ms) - t )) ms after submission"
tap_check "site B sent the DSN to site A's MX listener" \
    grep -Eq "postfix-b/smtp\[[0-9]+\]: [0-9A-Za-z]+: to=<$U>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:$POSTLINK_SMTP_PORT,.* status=sent" "$HB_DIR/maillog"
tap_check "site A's MX listener got it from 127.0.0.2 (site B's address)" \
    grep -Eq " postfix/smtpd\[[0-9]+\]: [0-9A-Za-z]+: client=unknown\[127\.0\.0\.2\]" "$H_DIR/postfix/maillog"

# (4)+(5) XCLIENT on site B's SIP listener.  dialogue SRC: one session
# from SRC; prints "STEP CODE TEXT" per command.
dialogue() {
    python3 - "$1" "$HB_SIP_PORT" "$HB_DOMAIN" <<'PY' 2>&1
import smtplib, sys
src, port, dom = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = smtplib.SMTP("127.0.0.2", port, source_address=(src, 0), timeout=20)
def say(step, r):
    print(step, r[0], r[1].decode(errors="replace").replace("\n", " "))
code, text = s.ehlo("sipd.test")
print("ehlo-xclient", int(b"XCLIENT" in text))
if src == "127.0.0.2":   # control: from 127.0.0.2 itself relaying is allowed
    s.mail("a@caller.test"); say("relay-before", s.rcpt("x@third.test")); s.rset()
say("xclient", s.docmd("XCLIENT", "ADDR=192.0.2.7"))
s.ehlo_resp = None
s.ehlo("sipd.test")
say("mail", s.mail("a@caller.test"))
say("relay", s.rcpt("x@third.test"))
say("unknown", s.rcpt("nobody@" + dom))
say("user", s.rcpt("dave@" + dom))
s.quit()
PY
}
out=$(dialogue 127.0.0.2)
tap_diag "${out//$'\n'/ | }"
tap_check "from 127.0.0.2 the SIP listener offers XCLIENT" grep -qx 'ehlo-xclient 1' <<<"$out"
tap_check "from 127.0.0.2 itself relaying is allowed (mynetworks)" grep -q '^relay-before 250 ' <<<"$out"
tap_check "XCLIENT ADDR=192.0.2.7 is accepted (a new 220 greeting)" grep -q '^xclient 220 ' <<<"$out"
tap_check "then relaying to x@third.test is refused: 554 5.7.1 Relay access denied" \
    grep -q '^relay 554 5.7.1 <x@third.test>: Relay access denied' <<<"$out"
tap_check "then nobody@$HB_DOMAIN is refused with 550 5.1.1" grep -q '^unknown 550 5.1.1 ' <<<"$out"
tap_check "and dave@$HB_DOMAIN is accepted" grep -q '^user 250 ' <<<"$out"
tap_check "site B's SIP listener logged the refusal for the XCLIENT peer 192.0.2.7" \
    grep -Eq "postfix-b/sip/smtpd\[[0-9]+\]: NOQUEUE: reject: RCPT from unknown\[192\.0\.2\.7\]: 554 5\.7\.1 <x@third\.test>" "$HB_DIR/maillog"
out=$(dialogue 127.0.0.1)
tap_diag "${out//$'\n'/ | }"
tap_check "from 127.0.0.1 the SIP listener does not offer XCLIENT" grep -qx 'ehlo-xclient 0' <<<"$out"
tap_check "from 127.0.0.1 XCLIENT is refused (550 5.7.0 insufficient authorization)" \
    grep -q '^xclient 550 5.7.0 Error: insufficient authorization' <<<"$out"
tap_check "from 127.0.0.1 (not in site B's mynetworks) relaying is refused too" \
    grep -q '^relay 554 5.7.1 ' <<<"$out"

tap_check "site B's queue is empty" bash -c '[ -z "$(postqueue -c "$1" -j)" ]' _ "$HB_DIR/etc"
tap_diag "test body $(( $(h__ms) - T0 )) ms"

h_stop_all
tap_check "h_stop_all stops site B too (no process left, its MX port closed)" \
    bash -c '[ -z "$1" ] && ! (exec 3<>"/dev/tcp/127.0.0.2/$2") 2>/dev/null' _ "$(h_leftovers)" "$HB_SMTP_PORT"
tap_done
