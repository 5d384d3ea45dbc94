#!/usr/bin/env bash
# t_sync_security.sh -- capability 1: nothing a stranger (or another user)
# sends changes alice's state, and postlink's sync headers from them are
# stripped while the mail itself is delivered; malformed controls from
# alice's own device get a clear 5xx; a milter killed mid-message makes
# Postfix tempfail, and the mail goes through after the restart.
set -u
. "${abs_top_srcdir:-.}/tests/integration/tap.sh"
. "$abs_top_srcdir/tests/harness/harness.sh"
. "$abs_top_srcdir/tests/harness/sync.sh"

h_init || exit 1
HS_CONF_EXTRA="control_max_targets = 5"
h_start_sink && h_start_dovecot && hs_setup && h_start_postfix && hs_start || {
    tap_fail "harness starts"; tap_done; exit 1; }

U=$POSTLINK_DEMO_USER PW=$POSTLINK_DEMO_PASS B=bob@$POSTLINK_DOMAIN
PHONE=alice-phone@devices.test DESK=alice-desk@devices.test
for d in $PHONE $DESK; do "$POSTLINKCTL" device add "$U" "$d" >/dev/null; done
SUB=$POSTLINK_SUBMISSION_PORT MX=$POSTLINK_SMTP_PORT
state_json() { "$POSTLINKCTL" state show "$U" "$1" --json 2>/dev/null; }
forwarded() { hs_sink_grep "X-Postlink-Forwarded: by mail.postlink.test" | wc -l; }
mailbox_file() { grep -ls -- "$2" "$(h__maildir "$1")"/new/* | head -1; }
no_sync_headers() { test -f "$1" && ! grep -qiE '^(X-Control|X-Control-Target|X-Control-Version|X-Control-Since|X-Postlink-Forwarded|X-Postlink-State):' "$1"; }

M=$(hs_msgid target)
hs_send "$MX" friend@elsewhere.example "$U" --header "Message-Id: $M" >/dev/null
h_wait_maildir_files alice 1
tap_check "setup: the target message arrived with no state" jq_true '.[0].states == []' "$(state_json "$M")"

# --- strangers ------------------------------------------------------------
S1=$(hs_msgid stranger)
hs_send "$MX" "$PHONE" "$U" --header "Message-Id: $S1" --add-header "X-Control: deleted" \
    --add-header "X-Control-Target: $M" --add-header "X-Postlink-State: deleted" \
    --add-header "X-Postlink-Forwarded: by mail.postlink.test; user=$U" >/dev/null
h_wait_maildir_files alice 2
f=$(mailbox_file alice "$S1")
tap_check "a stranger's control (forged device sender, no SASL) is delivered as ordinary mail" test -n "$f"
tap_check "with every postlink sync header stripped" no_sync_headers "$f"
tap_check "and changes no state" jq_true '.[0].states == []' "$(state_json "$M")"
S2=$(hs_msgid state)
hs_send "$MX" stranger@elsewhere.example "$U" --header "Message-Id: $S2" --add-header "X-Postlink-State: deleted" \
    --add-header "x-postlink-state: saved" --add-header "X-POSTLINK-STATE: read" >/dev/null
h_wait_maildir_files alice 3 && hs_wait_sink_grep "$S2" 1
tap_check "a stranger's X-Postlink-State: deleted (three of them, in any case) is stripped" no_sync_headers "$(mailbox_file alice "$S2")"
tap_check "and his devices' copies at the sink have none either" \
    sh -c "f=\$(grep -l -- '$S2' '$POSTLINK_SINK_DIR'/* | head -1); test -n \"\$f\" && ! grep -q '^X-Postlink-State' \"\$f\""

# --- another user -----------------------------------------------------------
S3=$(hs_msgid bob)
hs_send "$SUB" "$PHONE" "$U" --auth-user "$B" --auth-password "$H_BOB_PASS" --header "Message-Id: $S3" \
    --add-header "X-Control: deleted" --add-header "X-Control-Target: $M" >/dev/null
h_wait_maildir_files alice 4
tap_check "bob (authenticated as himself) cannot send alice's controls: delivered, stripped" \
    no_sync_headers "$(mailbox_file alice "$S3")"
tap_check "state unchanged" jq_true '.[0].states == []' "$(state_json "$M")"
S4=$(hs_msgid fromalice)
hs_send "$SUB" "$U" "$B" --auth-user "$U" --auth-password "$PW" --header "Message-Id: $S4" \
    --add-header "X-Postlink-State: deleted" >/dev/null
h_wait_maildir_files bob 1
tap_check "alice cannot set X-Postlink-State on mail to bob" no_sync_headers "$(mailbox_file bob "$S4")"

# --- alice herself, but from an address that is not her device ----------
S5=$(hs_msgid forged)
hs_send "$SUB" mallory@devices.test "$U" --auth-user "$U" --auth-password "$PW" --header "Message-Id: $S5" \
    --header "From: <mallory@devices.test>" --add-header "X-Control: deleted" --add-header "X-Control-Target: $M" >/dev/null
h_wait_maildir_files alice 5
tap_check "a control from an unregistered sender address is not applied and stripped" \
    bash -c "jq -e '.[0].states == []' <<<'$(state_json "$M")' >/dev/null && grep -q . '$(mailbox_file alice "$S5")'"
hs_marker "$U" "$PW" "$DESK"
tap_check "no copies were fanned out for any of these (only a later marker's answer is at the sink)" \
    test "$(forwarded)" = 1 -a -n "$(hs_sink_grep "In-Reply-To: $HS_MARKER")"

out=$(hs_send "$SUB" "$U" "x@sync.postlink.invalid" --auth-user "$U" --auth-password "$PW")
tap_check "the sync pseudo-domain cannot be addressed from outside (550)" grep -q '<\*\* 550 5.1.1' <<<"$out"
# bob spells the pseudo-domain with a trailing dot: refused at RCPT
out=$(hs_send "$SUB" "$B" "alice=postlink.test+0123456789abcdef0123456789abcdef@sync.postlink.invalid." \
    --auth-user "$B" --auth-password "$H_BOB_PASS")
tap_check "the pseudo-domain with a trailing dot is refused too (550)" grep -q '<\*\* 550 5.1.1' <<<"$out"
# a control handed straight to a listener without the milter (as sendmail(1)
# or a local process could): postlink-syncd finds no route token and refuses
S8=$(hs_msgid nomilter)
hs_send "$H_REINJECT_PORT" "$PHONE" "alice=postlink.test+0123456789abcdef0123456789abcdef@sync.postlink.invalid" \
    --header "Message-Id: $S8" --header "From: <$U>" --add-header "X-Control: deleted" \
    --add-header "X-Control-Target: $M" >/dev/null
end=$((SECONDS + 15))
until grep -q 'no route token from postlink-sync' "$H_SYNC/syncd.log" || [ $SECONDS -ge $end ]; do sleep 0.1; done
tap_check "postlink-syncd refuses a control that did not pass the milter" grep -q 'no route token from postlink-sync' "$H_SYNC/syncd.log"
tap_check "and nothing changed" jq_true '.[0].states == []' "$(state_json "$M")"
S9=$(hs_msgid dot2)
hs_send "$SUB" "$B" "alice@postlink.test." --auth-user "$B" --auth-password "$H_BOB_PASS" \
    --header "Message-Id: $S9" --add-header "X-Postlink-State: deleted" >/dev/null
h_wait_maildir_files alice 6
tap_check "a trailing dot on alice's address does not let bob's X-Postlink-State through" \
    no_sync_headers "$(mailbox_file alice "$S9")"
out=$(hs_send "$SUB" "$PHONE" "$U" --auth-user "$U" --auth-password "$PW" --to "$U,$B" \
    --add-header "X-Control: read" --add-header "X-Control-Target: $M")
tap_check "alice's control that also goes to bob is refused (550 5.7.1)" \
    grep -q '<\*\* 550 5.7.1 a control message may be sent only to your own address' <<<"$out"

# --- malformed controls from alice's own device: 5xx with the reason ----
bad() {   # bad DESCRIPTION EXPECTED-TEXT swaks-header-args...
    local desc=$1 want=$2 out
    shift 2
    out=$(hs_send "$SUB" "$PHONE" "$U" --auth-user "$U" --auth-password "$PW" "$@")
    tap_check "$desc" grep -q "<\*\* 550 5.6.0 .*$want" <<<"$out"
}
bad "unknown state word: 550 with the reason" 'unknown X-Control state' \
    --add-header "X-Control: reed" --add-header "X-Control-Target: $M"
bad "missing target: 550" 'X-Control-Target missing' --add-header "X-Control: read"
bad "malformed target: 550" 'malformed X-Control-Target' \
    --add-header "X-Control: read" --add-header "X-Control-Target: no-brackets"
bad "more targets than control_max_targets: 550" 'more than 5 targets' \
    --add-header "X-Control: read" --add-header "X-Control-Target: <1@x> <2@x> <3@x> <4@x> <5@x> <6@x>"
huge=$(for i in $(seq 3000); do printf '<t%d@example.invalid> ' "$i"; done)
bad "a 70 KB target header: 550, no crash" 'more than 5 targets' \
    --add-header "X-Control: read" --add-header "X-Control-Target: $huge"
bad "8-bit bytes in a target: 550" 'malformed X-Control-Target' \
    --add-header "X-Control: read" --add-header "X-Control-Target: $(printf '<caf\xc3\xa9@x>')"
tap_check "the milter survived all of it" h__alive "$HS_MILTER_PID"
S6=$(hs_msgid eightbit)
hs_send "$MX" friend@elsewhere.example "$U" --header "Message-Id: $S6" \
    --header "Subject: $(printf 'caf\xc3\xa9 cr\xe8me')" >/dev/null
h_wait_maildir_files alice 7
tap_check "ordinary mail with 8-bit header bytes is delivered" test -n "$(mailbox_file alice "$S6")"
tap_check "no malformed control changed anything" jq_true '.[0].states == [] and .[0].version == 0' "$(state_json "$M")"

# --- the milter dies in the middle of a message ----------------------------
S7=$(hs_msgid killed)
exec 5<>"/dev/tcp/127.0.0.1/$MX"
smtp() { printf '%s\r\n' "$1" >&5; }
reply() { local l; while IFS= read -r -t 10 l <&5; do echo "$l"; [ "${l:3:1}" = " " ] && break; done; }
reply >/dev/null; smtp "EHLO client.example"; reply >/dev/null
smtp "MAIL FROM:<friend@elsewhere.example>"; reply >/dev/null
smtp "RCPT TO:<$U>"; reply >/dev/null
smtp "DATA"; reply >/dev/null
smtp "Message-Id: $S7"; smtp "Subject: milter dies"
hs_kill "$HS_MILTER_PID" KILL
smtp ""; smtp "body"; smtp "."
r=$(reply); smtp "QUIT"; exec 5<&-
tap_check "with the milter killed mid-message Postfix tempfails the mail (4xx: '$r')" grep -q '^4' <<<"$r"
hs_start_milter
hs_send "$MX" friend@elsewhere.example "$U" --header "Message-Id: $S7" >/dev/null
h_wait_maildir_files alice 8
tap_check "after the restart the retried mail is delivered once" test "$(grep -ls -- "$S7" "$(h__maildir alice)"/new/* | wc -l)" = 1
tap_done
