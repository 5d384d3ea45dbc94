#!/usr/bin/env bash
# t_tag.sh -- capability 4 end to end: a private Postfix with the
# postlink-tag milter, Dovecot mailboxes, Prosody and postlink-xmppd.
# alice (linked, online in XMPP) mails bob: bob's copy carries her
# Jabber-ID, a mail-id, a valid tag, "online" and a chat link without the
# subject; offline and away follow her chat program; bob follows the link
# and alice's chat program receives the subject from postlink-xmppd; carol,
# not a recipient, gets nothing; strangers' and replayed tags yield no
# presence, nor do replays with another Subject, body, To, an added
# Reply-To or Content-Type or another From display name; a peer site's
# v=3 tag shows presence, its v=2 tag does not; sharing off; the XMPP
# server or postlink-xmppd down.
set -u
H_USERS="alice bob carol dave" HX_USERS="alice bob carol dave postlink"
. "${abs_top_srcdir:-.}/tests/integration/tap.sh"
. "$abs_top_srcdir/tests/harness/harness.sh"
. "$abs_top_srcdir/tests/harness/xmpp.sh"

h_init || exit 1
h_start_sink && h_start_dovecot && hx_start_prosody && hx_setup && h_start_postfix &&
    hx_start_xmppd && hx_start_tag || { tap_fail "harness with postlink-tag, postlink-xmppd, Prosody"; tap_done; exit 1; }
tap_ok "harness with postlink-tag, postlink-xmppd, Prosody"

D=$POSTLINK_DOMAIN X=$POSTLINK_XMPP_DOMAIN SUB=$POSTLINK_SUBMISSION_PORT MX=$POSTLINK_SMTP_PORT
for u in alice bob carol; do "$POSTLINKCTL" messenger link "$u@$D" "$u@$X" >/dev/null; done
hx_client alice -a && hx_client bob -a && hx_client carol -a
presence_is() {
    local end=$((SECONDS + 10))
    until [ "$(hx_presence "$1")" = "$2" ]; do [ $SECONDS -ge $end ] && return 1; sleep 0.1; done
}
tap_check "alice is linked and postlink-xmppd sees her online" presence_is "alice@$X" online

# send_as USER TO SUBJECT [swaks options]: submission with SASL as USER; prints the Message-ID
send_as() {
    local u=$1 to=$2 subj=$3 id
    shift 3
    id=$(printf '<%s.%s@test.invalid>' "$u" "$RANDOM$RANDOM")
    swaks --server 127.0.0.1 --port "$SUB" --from "$u@$D" --to "$to" --auth-user "$u@$D" \
        --auth-password "$(h_user_pass "$u")" --header "Subject: $subj" --header "Message-Id: $id" \
        --timeout 20 "$@" >/dev/null 2>&1 && printf '%s' "$id"
}
# mailbox_file USER PATTERN: wait (10 s) for USER's message containing PATTERN
mailbox_file() {
    local end=$((SECONDS + 10)) f
    while :; do
        f=$(grep -lsF -- "$2" "$(h__maildir "$1")"/new/* 2>/dev/null | head -1)
        [ -n "$f" ] && { printf '%s' "$f"; return 0; }
        [ $SECONDS -ge $end ] && return 1
        sleep 0.1
    done
}
hdr() { grep -i "^$2:" "$1" | head -1 | sed "s/^[^:]*: *//" | tr -d '\r'; }
has() { grep -qi -- "$2" <<<"$1"; }        # has TEXT PATTERN
nhdr() { grep -ci "^$2:" "$1"; }

# --- tagging and annotation -------------------------------------------------------
M1=$(send_as alice "bob@$D" "Lunch on Friday")
f=$(mailbox_file bob "$M1")
tap_check "alice's mail reaches bob" test -n "$f"
MAILID=$(hdr "$f" X-Mail-Id)
tap_check "it carries her Jabber-ID (RFC 7259)" test "$(hdr "$f" Jabber-ID)" = "alice@$X"
tap_check "a mail-id of 26 base32 characters" grep -qE '^[a-z2-7]{26}$' <<<"$MAILID"
tap_check "and X-Postlink-Tag v=3 signed with this site's key k1, with the body's hash" \
    grep -qE '^v=3; k=k1; t=[0-9]+; bh=[A-Za-z0-9+/]{43}=; s=[A-Za-z0-9+/]{43}=$' <<<"$(hdr "$f" X-Postlink-Tag)"
tap_check "bob's copy says alice is online" test "$(hdr "$f" X-Messenger-Presence)" = online
CHAT=$(hdr "$f" X-Messenger-Chat)
tap_check "and links to a chat with postlink-xmppd carrying only the mail-id" \
    test "$CHAT" = "<xmpp:$HX_JID?message;body=$MAILID>"
tap_check "the link does not carry the subject" eval '! has "$CHAT" lunch'
M1B=$(send_as alice "bob@$D" "Second one")
f=$(mailbox_file bob "$M1B")
tap_check "every mail gets its own mail-id" test -n "$f" -a "$(hdr "$f" X-Mail-Id)" != "$MAILID"

hx_client_stop alice
presence_is "alice@$X" offline
M2=$(send_as alice "bob@$D" "Are you there")
tap_check "alice offline: the next mail says offline" \
    test "$(hdr "$(mailbox_file bob "$M2")" X-Messenger-Presence)" = offline
hx_client alice -a -w away
presence_is "alice@$X" away
M3=$(send_as alice "bob@$D" "Away mail")
tap_check "alice away: away" test "$(hdr "$(mailbox_file bob "$M3")" X-Messenger-Presence)" = away
hx_client_stop alice
hx_client alice -a
presence_is "alice@$X" online

M4=$(send_as dave "bob@$D" "From dave" --add-header "Jabber-ID: dave@$X")
f=$(mailbox_file bob "$M4")
tap_check "mail from a sender who is not linked is left alone (his own Jabber-ID kept)" \
    sh -c "test '$(hdr "$f" Jabber-ID)' = 'dave@$X' && ! grep -qiE '^(X-Mail-Id|X-Postlink-Tag|X-Messenger-)' '$f'"

# --- chat about a mail ---------------------------------------------------------------
n=$(grep -c "^MSG $HX_JID" "$H_DIR/xmpp-alice.log")
hx_client_stop bob
hx_client bob -a -m "$HX_JID=$MAILID"
tap_check "bob follows the link: alice's chat program hears from postlink-xmppd" \
    hx_wait_file "$H_DIR/xmpp-alice.log" "^MSG $HX_JID" $((n + 1))
line=$(grep "^MSG $HX_JID" "$H_DIR/xmpp-alice.log" | tail -1)
tap_check "naming bob and the subject of her mail, looked up by mail-id" \
    eval 'has "$line" "bob@$D" && has "$line" "Lunch on Friday"'
tap_check "bob is told how to reach alice" hx_wait_file "$H_DIR/xmpp-bob.log" "^MSG $HX_JID.*xmpp:alice@$X"
n=$(grep -c "^MSG $HX_JID" "$H_DIR/xmpp-alice.log")
hx_client_stop carol
hx_client carol -a -m "$HX_JID=$MAILID"
hx_wait_file "$H_DIR/xmpp-carol.log" "^MSG $HX_JID" 1
tap_check "carol, who was not a recipient, learns nothing" \
    grep -q "no mail of yours matches" "$H_DIR/xmpp-carol.log"

# bob's next request is the marker: postlink-xmppd answered carol before it
# read bob's, and tells alice about bob after anything it told her about carol
MQ=$(send_as alice "bob@$D" "=?UTF-8?Q?Caf=C3=A9_on_Friday?=")
Q=$(hdr "$(mailbox_file bob "$MQ")" X-Mail-Id)
hx_client_stop bob
hx_client bob -a -m "$HX_JID=$Q"
hx_wait_file "$H_DIR/xmpp-alice.log" "^MSG $HX_JID.*Caf" 1
tap_check "an encoded subject (RFC 2047) reaches alice decoded, by GMime" \
    grep -q "^MSG $HX_JID.*\"Café on Friday\"" "$H_DIR/xmpp-alice.log"
tap_check "and alice heard nothing about carol before it (one message since: bob's)" \
    eval 'test "$(grep -c "^MSG $HX_JID" "$H_DIR/xmpp-alice.log")" = $((n + 1)) && ! grep -q "^MSG $HX_JID.*carol" "$H_DIR/xmpp-alice.log"'

M5=$(send_as alice "bob@$D" "Team meeting" --to "bob@$D,carol@$D,dave@$D" --header "To: bob@$D, carol@$D")
G=$(hdr "$(mailbox_file carol "$M5")" X-Mail-Id)
MD=$(send_as alice "dave@$D" "Only for dave")
GD=$(hdr "$(mailbox_file dave "$MD")" X-Mail-Id)
"$POSTLINKCTL" messenger link "dave@$D" "dave@$X" >/dev/null
# dave got M5 as Bcc; his third message (a real request) is the marker that
# postlink-xmppd has read the second; on SIGUSR1 he asks about his own mail
hx_client dave -a -J -m "$HX_JID=hello" -m "$HX_JID=hello again" -m "$HX_JID=$G" -u "$HX_JID=$GD"
hx_wait_file "$H_DIR/xmpp-dave.log" "^MSG $HX_JID.* has been told" 1
tap_check "two chatty messages in a row get one answer (no ping-pong with robots)" \
    test "$(grep -c "^MSG $HX_JID.*send the mail-id" "$H_DIR/xmpp-dave.log")" = 1
tap_check "dave (Bcc) is linked and online, so only the Bcc rule can keep him out" presence_is "dave@$X" online
# alice, carol and bob join the rooms they are invited to and each says
# hello once all four (postlink-xmppd included) are in
hx_client_stop alice; hx_client alice -a -J -G "hello from alice" -N 4
hx_client_stop carol; hx_client carol -a -J -G "hello from carol" -N 4
hx_client_stop bob
hx_client bob -a -J -G "hello from bob" -N 4 -m "$HX_JID=group $G"
R="chat-[a-z2-7]{26}@$HX_MUC_DOMAIN"
tap_check "\"group <mail-id>\" for a mail to bob and carol invites alice to a room with a random name" \
    hx_wait_file "$H_DIR/xmpp-alice.log" "^INVITE $R "
tap_check "and carol, who is online" hx_wait_file "$H_DIR/xmpp-carol.log" "^INVITE $R "
tap_check "and bob, who asked" hx_wait_file "$H_DIR/xmpp-bob.log" "^INVITE $R "
tap_check "the invitation says what the chat is about" \
    hx_wait_file "$H_DIR/xmpp-alice.log" "^INVITE $R $HX_JID.* opened this chat about the mail \"Team meeting\""
room=$(grep -oE "^INVITE $R" "$H_DIR/xmpp-alice.log" | tail -1 | cut -d' ' -f2)
tap_check "the room's name does not give the mail-id away" eval '! has "$room" "$G"'
for u in alice bob carol; do
    tap_check "$u enters the room (join accepted, not registration-required)" \
        eval 'hx_wait_file "$H_DIR/xmpp-$u.log" "^(JOINED|JOINERR) $room" && grep -q "^JOINED $room" "$H_DIR/xmpp-$u.log"'
done
for u in alice bob carol; do
    for o in alice bob carol; do
        [ "$u" = "$o" ] && continue
        tap_check "$u hears $o in the room" hx_wait_file "$H_DIR/xmpp-$u.log" "^GROUPCHAT $room/$o hello from $o"
    done
done
tap_check "postlink-xmppd confirmed each membership before inviting (3 of 3)" \
    hx_wait_file "$H_TAG/xmppd.log" "room $room for bob@$X: 3 of 3 member\(s\) confirmed and invited"
# the marker for dave: his request after every invitation went out is answered
hx_client_sync dave
hx_wait_file "$H_DIR/xmpp-dave.log" "^MSG $HX_JID.* has been told" 2
tap_check "dave, a Bcc recipient, is not invited" eval '! grep -q "^INVITE" "$H_DIR/xmpp-dave.log"'
tap_check "and the invitations do not say who else got the mail" eval '! grep "^INVITE" "$H_DIR/xmpp-carol.log" | grep -q "dave@"'

# --- strangers, forgeries, replays ------------------------------------------------------
# forged fields in lower, upper and mixed case, some repeated: none reaches bob
S1='<stranger1@elsewhere.example>'
swaks --server 127.0.0.1 --port "$MX" --from "alice@$D" --to "bob@$D" --header "Message-Id: $S1" \
    --add-header "Jabber-ID: alice@$X" --add-header "X-Mail-Id: $MAILID" \
    --add-header "X-Postlink-Tag: v=3; k=k1; t=$(date +%s); bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; s=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" \
    --add-header "X-Messenger-Presence: online" --add-header "X-Messenger-Chat: <xmpp:evil@example.com>" \
    --add-header "x-messenger-presence: online" --add-header "X-MESSENGER-PRESENCE: away" \
    --add-header "x-Messenger-presence: online" --add-header "x-messenger-chat: <xmpp:evil@example.com>" \
    --add-header "X-MESSENGER-CHAT: <xmpp:evil@example.com>" --add-header "X-messenger-Chat: <xmpp:evil@example.com>" \
    --timeout 20 >/dev/null 2>&1
f=$(mailbox_file bob "$S1")
tap_check "a stranger's forged tag is removed (X-Postlink-Tag, X-Mail-Id)" \
    sh -c "test -n '$f' && ! grep -qiE '^(X-Postlink-Tag|X-Mail-Id):' '$f'"
tap_check "his X-Messenger-Presence and X-Messenger-Chat, in any letter case and repeated, are removed; none added" \
    test "$(nhdr "$f" X-Messenger-Presence)$(nhdr "$f" X-Messenger-Chat)" = 00
tap_check "the Jabber-ID his program wrote is kept" test "$(hdr "$f" Jabber-ID)" = "alice@$X"
S3='<stranger3@elsewhere.example>'
swaks --server 127.0.0.1 --port "$MX" --from "x@elsewhere.example" --to "bob@$D" --header "Message-Id: $S3" \
    --add-header "jabber-id: alice@$X" --add-header "x-mail-id: $MAILID" --add-header "X-MAIL-ID: $MAILID" \
    --add-header "x-postlink-tag: v=2; k=k1; t=1; bh=x; s=y" --add-header "X-POSTLINK-TAG: v=1; k=k1; t=1; s=y" \
    --add-header "X-Postlink-tag: v=2" --timeout 20 >/dev/null 2>&1
f=$(mailbox_file bob "$S3")
tap_check "X-Mail-Id and X-Postlink-Tag in lower, upper and mixed case, repeated: all removed" \
    eval 'test -n "$f" && test "$(nhdr "$f" X-Mail-Id)$(nhdr "$f" X-Postlink-Tag)$(nhdr "$f" X-Messenger-Presence)" = 000'
M11=$(send_as alice "bob@$D" "Forged by her program" --add-header "jabber-id: mallory@$X" \
    --add-header "JABBER-ID: eve@$X" --add-header "x-mail-id: abcdefghijklmnopqrstuvwxyz" \
    --add-header "X-MAIL-ID: abcdefghijklmnopqrstuvwxyz" --add-header "x-postlink-tag: v=2; k=k1" \
    --add-header "X-POSTLINK-TAG: v=2; k=k1" --add-header "x-messenger-presence: offline" \
    --add-header "X-MESSENGER-PRESENCE: away" --add-header "x-Messenger-Chat: <xmpp:evil@example.com>" \
    --add-header "X-MESSENGER-CHAT: <xmpp:evil@example.com>")
f=$(mailbox_file bob "$M11")
tap_check "a linked sender's own program's Jabber-ID/X-Mail-Id/X-Postlink-Tag in any case are replaced: one of each" \
    eval 'test -n "$f" && test "$(nhdr "$f" Jabber-ID)$(nhdr "$f" X-Mail-Id)$(nhdr "$f" X-Postlink-Tag)" = 111 &&
          test "$(hdr "$f" Jabber-ID)" = "alice@$X" && test "$(hdr "$f" X-Mail-Id)" != abcdefghijklmnopqrstuvwxyz &&
          grep -qE "^v=3; k=k1; " <<<"$(hdr "$f" X-Postlink-Tag)"'
tap_check "and only the milter's own X-Messenger-Presence and X-Messenger-Chat reach bob" \
    eval 'test "$(nhdr "$f" X-Messenger-Presence)$(nhdr "$f" X-Messenger-Chat)" = 11 &&
          test "$(hdr "$f" X-Messenger-Presence)" = online &&
          test "$(hdr "$f" X-Messenger-Chat)" = "<xmpp:$HX_JID?message;body=$(hdr "$f" X-Mail-Id)>"'

# replays of alice's real mail M1 to bob, as bob's mailbox has it: X-Replay
# (a field the tag does not bind) tells the copies apart; logged_since
# PATTERN: the milter logged it for the last replay
logged_since() { tail -n "+$((L + 1))" "$H_TAG/tag.log" | grep -q -- "$1"; }
orig=$(mailbox_file bob "$M1")
# replay MARK RCPTS [SED]: M1 with X-Replay: MARK (and SED applied) sent to RCPTS on port 25
replay() {
    L=$(wc -l <"$H_TAG/tag.log")
    { printf 'X-Replay: %s\n' "$1"; sed "${3:-}" "$orig" | grep -v '^\(Return-Path\|Delivered-To\):'; } >"$H_DIR/replay-$1.eml"
    swaks --server 127.0.0.1 --port "$MX" --from "alice@$D" --to "$2" --data "@$H_DIR/replay-$1.eml" \
        --timeout 20 >/dev/null 2>&1
}
replay same "bob@$D" '1i x-messenger-presence: away\nX-MESSENGER-CHAT: <xmpp:evil@example.com>\nx-Messenger-Presence: offline\nX-messenger-chat: <xmpp:evil@example.com>'
f=$(mailbox_file bob "X-Replay: same")
tap_check "an unchanged copy of alice's mail to bob (with forged presence fields in any case) shows what the original showed, once" \
    eval 'test -n "$f" && test "$(nhdr "$f" X-Messenger-Presence)$(nhdr "$f" X-Messenger-Chat)" = 11 &&
          test "$(hdr "$f" X-Messenger-Presence)" = online && test "$(hdr "$f" X-Messenger-Chat)" = "$CHAT"'
replay subject "bob@$D" 's/^Subject: Lunch on Friday/Subject: Wire the money today/'
f=$(mailbox_file bob "X-Replay: subject")
tap_check "her headers with another Subject, to bob: no X-Messenger-Presence/Chat, tag removed" \
    eval 'test -n "$f" && grep -q "^Subject: Wire the money" "$f" &&
          test "$(nhdr "$f" X-Messenger-Presence)$(nhdr "$f" X-Messenger-Chat)$(nhdr "$f" X-Postlink-Tag)" = 000'
tap_check "the milter logged why (bad signature)" logged_since "from=<alice@$D>: bad signature"
replay body "bob@$D" '/^\r\?$/,$ s/^This is a test mailing/Please wire the money today/'
f=$(mailbox_file bob "X-Replay: body")
tap_check "her headers with another body, to bob: no X-Messenger-Presence/Chat" \
    eval 'test -n "$f" && grep -q "^Please wire the money" "$f" &&
          test "$(nhdr "$f" X-Messenger-Presence)$(nhdr "$f" X-Messenger-Chat)" = 00'
tap_check "the milter logged why (the body changed)" logged_since "the body changed since it was tagged"
replay to "bob@$D" "s/^To: bob@$D/To: bob@$D, carol@$D/"
f=$(mailbox_file bob "X-Replay: to")
tap_check "her headers with another To, to bob: no X-Messenger-Presence/Chat" \
    eval 'test -n "$f" && test "$(nhdr "$f" X-Messenger-Presence)$(nhdr "$f" X-Messenger-Chat)" = 00'
# fields the recipient's program shows or acts on, bound since v=3
replay replyto "bob@$D" '1i Reply-To: <mallory@evil.example>'
f=$(mailbox_file bob "X-Replay: replyto")
tap_check "her mail with an added Reply-To, to bob: no X-Messenger-Presence/Chat, tag removed" \
    eval 'test -n "$f" && grep -q "^Reply-To: <mallory@evil.example>" "$f" &&
          test "$(nhdr "$f" X-Messenger-Presence)$(nhdr "$f" X-Messenger-Chat)$(nhdr "$f" X-Postlink-Tag)" = 000'
tap_check "the milter logged why (bad signature)" logged_since "from=<alice@$D>: bad signature"
# (Postfix hands the milter this name as "Reply-To" and delivers it so; the
# white space before the colon is dropped by postlink-tag too, test_tag)
replay replyto2 "bob@$D" '1i Reply-To : <mallory@evil.example>'
f=$(mailbox_file bob "X-Replay: replyto2")
tap_check "the same with white space before the colon (obsolete \"Reply-To :\", delivered respelled by Postfix): no X-Messenger-Presence/Chat" \
    eval 'test -n "$f" && grep -qi "^Reply-To *: *<mallory@evil.example>" "$f" &&
          test "$(nhdr "$f" X-Messenger-Presence)$(nhdr "$f" X-Messenger-Chat)$(nhdr "$f" X-Postlink-Tag)" = 000'
replay fromname "bob@$D" "1,/^\r\?\$/ s/^From: .*/From: \"Alice (new bank details: IBAN XX00 EVIL)\" <alice@$D>/"
f=$(mailbox_file bob "X-Replay: fromname")
tap_check "her mail with another From display name (same address), to bob: no X-Messenger-Presence/Chat" \
    eval 'test -n "$f" && grep -q "^From: \"Alice (new bank details: IBAN XX00 EVIL)\" <alice@$D>" "$f" &&
          test "$(nhdr "$f" X-Messenger-Presence)$(nhdr "$f" X-Messenger-Chat)$(nhdr "$f" X-Postlink-Tag)" = 000'
tap_check "the milter logged why (bad signature)" logged_since "from=<alice@$D>: bad signature"
replay ctype "bob@$D" '1i Content-Type: text/html; charset=utf-7'
f=$(mailbox_file bob "X-Replay: ctype")
tap_check "her mail with an added Content-Type (the same body rendered otherwise), to bob: no X-Messenger-Presence/Chat" \
    eval 'test -n "$f" && grep -q "^Content-Type: text/html; charset=utf-7" "$f" &&
          test "$(nhdr "$f" X-Messenger-Presence)$(nhdr "$f" X-Messenger-Chat)$(nhdr "$f" X-Postlink-Tag)" = 000'
tap_check "the milter logged why (bad signature)" logged_since "from=<alice@$D>: bad signature"
replay same2 "bob@$D"
f=$(mailbox_file bob "X-Replay: same2")
tap_check "and her mail replayed unchanged to bob after them still shows what the original showed" \
    eval 'test -n "$f" && test "$(hdr "$f" X-Messenger-Presence)" = online && test "$(hdr "$f" X-Messenger-Chat)" = "$CHAT"'
replay carol "carol@$D"
f=$(mailbox_file carol "X-Replay: carol")
tap_check "alice's real mail replayed unchanged to carol (not a recipient) yields no presence" \
    eval 'test -n "$f" && test "$(nhdr "$f" X-Messenger-Presence)" = 0'
tap_check "the milter logged why" logged_since "replayed to someone who was not a recipient"
replay two "bob@$D,dave@$D"
f=$(mailbox_file bob "X-Replay: two")
tap_check "replayed to bob (a recipient) together with dave (not one): no presence for either" \
    eval 'test -n "$f" && test "$(nhdr "$f" X-Messenger-Presence)" = 0'

many=(); for i in $(seq 1001); do many+=(--add-header "Cc: c$i@elsewhere.example"); done
M12=$(send_as alice "bob@$D" "Many Cc" "${many[@]}")
f=$(mailbox_file bob "$M12")
tap_check "a mail with more header fields than a tag binds (1000) is not tagged" \
    eval 'test -n "$f" && test "$(nhdr "$f" X-Mail-Id)" = 0 && grep -q "not tagged: more than 1000" "$H_TAG/tag.log"'
M9=$(send_as alice "bob@$D" "Two senders" --add-header "From: mallory@$D")
f=$(mailbox_file bob "$M9")
tap_check "a mail with two From fields is not tagged" eval 'test -n "$f" && test "$(nhdr "$f" X-Mail-Id)" = 0' 

# a trusted peer site's mail, signed with its key "peer1" as postlink-tag(8)
# says: peer_tag T ACCOUNT MAILID MSGID FROM SUBJECT TO DATE BODY (the From
# field is the bare address; no Reply-To, Sender, Cc, In-Reply-To,
# References or MIME fields: each signed as absent)
peer_tag() {
    local bh sig
    bh=$(printf '%s\r\n' "$9" | openssl dgst -sha256 -binary | base64)
    sig=$(printf 'v=3\nk=peer1\nt=%s\na=%s\nm=%s\ni=%s\nf=%s\nfrom:%s\nreply-to\nsender\nsubject:%s\nto:%s\ncc\ndate:%s\nin-reply-to\nreferences\nmime-version\ncontent-type\ncontent-transfer-encoding\nbh=%s\n' \
        "$1" "$2" "$3" "$4" "$5" "$5" "$6" "$7" "$8" "$bh" |
        openssl dgst -sha256 -mac HMAC -macopt "hexkey:$HX_KEY_PEER" -binary | base64)
    printf 'v=3; k=peer1; t=%s; bh=%s; s=%s' "$1" "$bh" "$sig"
}
# the same as version 2 signed it (Subject, To, Cc, Date and the bare From address only)
peer_tag_v2() {
    local bh sig
    bh=$(printf '%s\r\n' "$9" | openssl dgst -sha256 -binary | base64)
    sig=$(printf 'v=2\nk=peer1\nt=%s\na=%s\nm=%s\ni=%s\nf=%s\nsubject:%s\nto:%s\ndate:%s\nbh=%s\n' \
        "$1" "$2" "$3" "$4" "$5" "$6" "$7" "$8" "$bh" |
        openssl dgst -sha256 -mac HMAC -macopt "hexkey:$HX_KEY_PEER" -binary | base64)
    printf 'v=2; k=peer1; t=%s; bh=%s; s=%s' "$1" "$bh" "$sig"
}
# peer_mail MSGID JID MAILID TAG: ann's mail to bob (Subject, To, Date, body as peer_tag had them)
PSUBJ="Peer lunch" PDATE="Mon, 23 Nov 2026 09:00:00 +0000" PBODY="Hello from the peer site"
peer_mail() {
    swaks --server 127.0.0.1 --port "$MX" --from "ann@peer.example" --to "bob@$D" --header "Message-Id: $1" \
        --header "From: ann@peer.example" --header "To: bob@$D" --header "Subject:   Peer "$'\t'" lunch " \
        --header "Date: $PDATE" --add-header "Jabber-ID: $2" --body "$PBODY  " \
        --add-header "X-Mail-Id: $3" --add-header "X-Postlink-Tag: $4" --timeout 20 >/dev/null 2>&1
}
PM='<peer1@peer.example>' PMID=abcdefghijklmnopqrstuvwxyz PT=$(date +%s)
PTAG=$(peer_tag "$PT" "ann@chat.peer.example" "$PMID" "$PM" "ann@peer.example" "$PSUBJ" "bob@$D" "$PDATE" "$PBODY")
peer_mail "$PM" "ann@chat.peer.example" "$PMID" "$PTAG"
f=$(mailbox_file bob "$PM")
tap_check "a peer site's valid tag (v=3, relaxed white space in Subject and body) is kept and annotated (presence unknown: not watched here)" \
    eval 'test -n "$f" && test "$(hdr "$f" X-Postlink-Tag)" = "$PTAG" && test "$(hdr "$f" X-Messenger-Presence)" = unknown'
tap_check "with a chat link for its mail-id" test "$(hdr "$f" X-Messenger-Chat)" = "<xmpp:$HX_JID?message;body=$PMID>"

# the peer key signing for an account linked here: no presence
PM2='<peer2@peer.example>' PMID2=bcdefghijklmnopqrstuvwxyza
peer_mail "$PM2" "alice@$X" "$PMID2" \
    "$(peer_tag "$PT" "alice@$X" "$PMID2" "$PM2" "ann@peer.example" "$PSUBJ" "bob@$D" "$PDATE" "$PBODY")"
f=$(mailbox_file bob "$PM2")
tap_check "a peer key vouching for alice's account (linked here) shows no presence" \
    eval 'test -n "$f" && test "$(nhdr "$f" X-Messenger-Presence)" = 0'
tap_check "the milter logged why" grep -q "a peer key signed mail for an account linked here" "$H_TAG/tag.log"

# the peer site still signing version 2: refused, saying why
PM3='<peer3@peer.example>' PMID3=cdefghijklmnopqrstuvwxyzab
L=$(wc -l <"$H_TAG/tag.log")
peer_mail "$PM3" "ann@chat.peer.example" "$PMID3" \
    "$(peer_tag_v2 "$PT" "ann@chat.peer.example" "$PMID3" "$PM3" "ann@peer.example" "$PSUBJ" "bob@$D" "$PDATE" "$PBODY")"
f=$(mailbox_file bob "$PM3")
tap_check "a peer site's tag of version 2 (valid as v=2 signed it) shows no presence and is removed" \
    eval 'test -n "$f" && test "$(nhdr "$f" X-Messenger-Presence)$(nhdr "$f" X-Postlink-Tag)" = 00'
tap_check "the milter logged why (version 2 refused)" logged_since "from=<ann@peer.example>: tag version 2 .*: refused"

big=$(head -c 60000 /dev/zero | tr '\0' 'j')
S2='<stranger2@elsewhere.example>'
out=$(swaks --server 127.0.0.1 --port "$MX" --from x@elsewhere.example --to "bob@$D" --header "Message-Id: $S2" \
    --add-header "Jabber-ID: $big@$X" --add-header "X-Mail-Id: $big" --timeout 20 2>&1)
f=$(mailbox_file bob "$S2")
tap_check "a 60 KB Jabber-ID and X-Mail-Id are accepted (250) and delivered without a tag" \
    eval 'has "$out" "^<- *250 2.0.0 Ok: queued" && test -n "$f" && test "$(nhdr "$f" X-Mail-Id)" = 0'

# --- too old: presence only while the mail-id is younger than tag_max_age ------
kill "$HX_TAG_PID"; while h__alive "$HX_TAG_PID"; do sleep 0.05; done
hx_start_tag -o tag_max_age=1s
sleep 2
replay old "bob@$D"
f=$(mailbox_file bob "X-Replay: old")
tap_check "alice's real tag, to its real recipient, once older than tag_max_age: no presence" \
    eval 'test -n "$f" && test "$(nhdr "$f" X-Messenger-Presence)" = 0'
tap_check "the milter logged why" logged_since "tag older than tag_max_age"
kill "$HX_TAG_PID"; while h__alive "$HX_TAG_PID"; do sleep 0.05; done
hx_start_tag

# --- sharing off --------------------------------------------------------------------
"$POSTLINKCTL" messenger share "alice@$D" off >/dev/null
M6=$(send_as alice "bob@$D" "Quiet mail")
f=$(mailbox_file bob "$M6")
tap_check "with sharing off alice's mail is still tagged" test -n "$(hdr "$f" X-Mail-Id)"
tap_check "but shows no presence" test "$(nhdr "$f" X-Messenger-Presence)" = 0
"$POSTLINKCTL" messenger share "alice@$D" on >/dev/null

# --- the XMPP server down, postlink-xmppd dead -----------------------------------------
hx_stop_prosody
presence_is "alice@$X" unknown
M7=$(send_as alice "bob@$D" "Server down")
tap_check "XMPP server down: mail still flows, presence unknown" \
    test "$(hdr "$(mailbox_file bob "$M7")" X-Messenger-Presence)" = unknown
hx_restart_prosody
hx_wait_file "$H_TAG/xmppd.log" 'logged in as' 2 20
kill -STOP "$HX_XMPPD_PID"
M10=$(send_as alice "bob@$D" "Daemon hung")
tap_check "postlink-xmppd hung (SIGSTOP): the lookup runs out of its 200 ms, presence unknown" \
    test "$(hdr "$(mailbox_file bob "$M10")" X-Messenger-Presence)" = unknown
tap_check "the milter logged the timeout" grep -q "presence of alice@$X unknown: timeout" "$H_TAG/tag.log"
kill -CONT "$HX_XMPPD_PID"
{ kill -KILL "$HX_XMPPD_PID"; wait "$HX_XMPPD_PID"; } 2>/dev/null
M8=$(send_as alice "bob@$D" "Daemon dead")
tap_check "postlink-xmppd killed: Postfix still accepts (no tempfail), presence unknown" \
    test "$(hdr "$(mailbox_file bob "$M8")" X-Messenger-Presence)" = unknown
tap_check "the milter logged why" grep -q "presence of alice@$X unknown" "$H_TAG/tag.log"

h_stop_all
tap_done
