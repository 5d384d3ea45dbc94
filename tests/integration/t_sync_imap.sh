#!/usr/bin/env bash
# t_sync_imap.sh -- capability 1 on the user's real mailbox: with imap_url
# set for the domain, postlink-syncd also sets each state on the message in
# alice's Dovecot INBOX (read \Seen, replied \Answered, deleted \Deleted,
# saved $Saved) and clears it again, through a Dovecot master user.
set -u
. "${abs_top_srcdir:-.}/tests/integration/tap.sh"
. "$abs_top_srcdir/tests/harness/harness.sh"
. "$abs_top_srcdir/tests/harness/sync.sh"

h_init || exit 1
MASTER_PASS=master-$RANDOM$RANDOM
h_dovecot_master_user "$MASTER_PASS"
h_start_sink && h_start_dovecot || { tap_fail "harness starts"; tap_done; exit 1; }
mkdir -p "$H_DIR/secret" && printf '%s\n' "$MASTER_PASS" >"$H_DIR/secret/imap-pass"
chmod 0600 "$H_DIR/secret/imap-pass"
HS_CONF_EXTRA="imap_url = $POSTLINK_DOMAIN=imap://127.0.0.1:$POSTLINK_IMAP_PORT
imap_password_file = $H_DIR/secret/imap-pass"
hs_setup && h_start_postfix && hs_start || { tap_fail "harness starts"; tap_done; exit 1; }
tap_ok "harness with imap_url starts"

U=$POSTLINK_DEMO_USER PW=$POSTLINK_DEMO_PASS PHONE=alice-phone@devices.test
"$POSTLINKCTL" device add "$U" "$PHONE" >/dev/null
MD=$(h__maildir alice)
# maildir flags (the letters after ":2,") of alice's message with Message-ID $1
flags() {
    local f; f=$(grep -ls -- "$1" "$MD"/new/* "$MD"/cur/* | head -1)
    case $f in *:2,*) echo "${f##*:2,}" ;; esac
}
wait_flags() {   # wait_flags MSGID EXTENDED-REGEX: until the flags match
    local end=$((SECONDS + 15))
    until flags "$1" | grep -Eq "$2"; do [ $SECONDS -ge $end ] && return 1; sleep 0.1; done
}
ctl() { hs_send "$POSTLINK_SUBMISSION_PORT" "$PHONE" "$U" --auth-user "$U" --auth-password "$PW" \
        --header "Message-Id: $(hs_msgid c)" --add-header "X-Control: $1" --add-header "X-Control-Target: $2" >/dev/null; }

M=$(hs_msgid imap)
hs_send "$POSTLINK_SMTP_PORT" friend@elsewhere.example "$U" --header "Message-Id: $M" >/dev/null
h_wait_maildir_files alice 1
tap_check "the message is in alice's INBOX, unflagged" test -z "$(flags "$M")"
ctl read "$M"
tap_check "read -> \\Seen on the IMAP message" wait_flags "$M" '^[a-z]*S'
ctl replied "$M"
tap_check "replied -> \\Answered (and \\Seen kept)" wait_flags "$M" 'R.*S'
ctl saved "$M"
end=$((SECONDS + 15))
until grep -qs ' \$Saved$' "$MD/dovecot-keywords" || [ $SECONDS -ge $end ]; do sleep 0.1; done
n=$(awk '$2 == "$Saved" {print $1}' "$MD/dovecot-keywords" 2>/dev/null)
letter=$(printf "\\$(printf %o $((97 + ${n:-0})))")
saved_set() { test -n "$n" && wait_flags "$M" "$letter"; }
tap_check "saved -> the \$Saved keyword (maildir letter '$letter')" saved_set
ctl deleted "$M"
tap_check "deleted -> \\Deleted" wait_flags "$M" 'T'
ctl undeleted "$M"
tap_check "undeleted -> \\Deleted removed" wait_flags "$M" '^[^T]*$'
ctl unread "$M"
tap_check "unread -> \\Seen removed (\\Answered stays)" wait_flags "$M" '^R[^S]*$'
M2=$(hs_msgid imap-late)
ctl saved "$M2"
pending() { "$POSTLINKCTL" pending list "$U" --json | jq -e 'length == 1' >/dev/null; }
end=$((SECONDS + 15))
until pending || [ $SECONDS -ge $end ]; do sleep 0.1; done
tap_check "the control for a message not seen yet is held" pending
hs_send "$POSTLINK_SMTP_PORT" friend@elsewhere.example "$U" --header "Message-Id: $M2" >/dev/null
h_wait_maildir_files alice 2
saved2() { wait_flags "$M2" "$letter"; }
tap_check "a state held until its target arrived reaches the IMAP message too" saved2
tap_check "syncd logged each IMAP change" test "$(grep -c 'imap: alice@postlink.test' "$H_SYNC/syncd.log")" -ge 6
tap_done
