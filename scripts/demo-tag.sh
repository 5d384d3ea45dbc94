# demo-tag.sh -- the messenger story of ./demo.sh (sourced by it): alice
# and bob link their XMPP accounts; alice's mail to bob carries her
# Jabber-ID, a mail-id and a signed tag, and bob's copy says she is online
# (then offline); bob follows the chat link and alice's chat program hears
# who wants to chat about which mail; a stranger's forged tag is stripped,
# and a real tag copied onto another message shows nothing.
XD=$POSTLINK_XMPP_DOMAIN
tag_send() {                   # tag_send SUBJECT: alice to bob over submission; prints the Message-ID
    local id="<demo-tag.$RANDOM$RANDOM@$POSTLINK_DOMAIN>"
    swaks --server 127.0.0.1 --port "$POSTLINK_SUBMISSION_PORT" --auth-user "$POSTLINK_DEMO_USER" \
        --auth-password "$POSTLINK_DEMO_PASS" --from "$POSTLINK_DEMO_USER" --to "bob@$POSTLINK_DOMAIN" \
        --header "Subject: $1" --header "Message-Id: $id" >/dev/null 2>&1 && printf '%s' "$id"
}
bob_copy() {                   # bob_copy MESSAGE-ID: the file in bob's mailbox (waits 10 s)
    local f i
    for i in $(seq 1 100); do
        f=$(grep -lsF -- "$1" "$(h__maildir bob)"/new/* | head -1)
        [ -n "$f" ] && { printf '%s' "$f"; return 0; }
        sleep 0.1
    done
    return 1
}
tag_headers() { grep -iE '^(Subject|Jabber-ID|X-Mail-Id|X-Postlink-Tag|X-Messenger-[a-z]+):' "$1" | tr -d '\r' | show; }

step "alice and bob link their mail addresses to their XMPP accounts; their chat programs log in"
"$CTL" messenger link "$POSTLINK_DEMO_USER" "alice@$XD" | show
"$CTL" messenger link "bob@$POSTLINK_DOMAIN" "bob@$XD" | show
if hx_client alice -a && hx_client bob -a && hx_wait_file "$H_DIR/xmpp-alice.log" "^SUBSCRIBE $HX_JID"; then
    sleep 1
    "$CTL" messenger list | show
    ok "postlink-xmppd ($HX_JID) asked both accounts for their presence; they approved"
else
    bad "the XMPP side did not come up"
fi

step "alice mails bob: the mail is tagged, and bob's copy says she is online"
T1=$(tag_send "Lunch on Friday?")
if f=$(bob_copy "$T1") && grep -q '^X-Messenger-Presence: online' "$f"; then
    tag_headers "$f"; ok "tagged by postlink-tag, presence from postlink-xmppd"
    MAILID=$(grep -i '^X-Mail-Id:' "$f" | sed 's/^[^:]*: *//' | tr -d '\r')
else
    bad "bob's copy is not tagged as online"; MAILID=
fi

step "alice closes her chat program: the next mail says offline"
hx_client_stop alice
for i in $(seq 1 50); do [ "$(hx_presence "alice@$XD")" = offline ] && break; sleep 0.1; done
T2=$(tag_send "One more thing")
if f=$(bob_copy "$T2") && grep -q '^X-Messenger-Presence: offline' "$f"; then
    tag_headers "$f" | grep -i presence; ok "offline"
else
    bad "not offline"
fi

step "bob follows the chat link of the first mail: alice hears who wants to chat, and about what"
hx_client alice -a
hx_client_stop bob
if [ -n "$MAILID" ] && hx_client bob -a -m "$HX_JID=$MAILID" &&
    hx_wait_file "$H_DIR/xmpp-alice.log" "^MSG $HX_JID" 1 10; then
    grep "^MSG $HX_JID" "$H_DIR/xmpp-alice.log" | tail -1 | show
    grep "^MSG $HX_JID" "$H_DIR/xmpp-bob.log" | tail -1 | show
    ok "the subject came from the store, looked up by the mail-id in the link"
else
    bad "the chat request did not reach alice"
fi

step "a stranger forges alice's Jabber-ID, a tag and a presence header: no presence is shown"
S="<demo-forged.$RANDOM@elsewhere.example>"
swaks --server 127.0.0.1 --port "$POSTLINK_SMTP_PORT" --from "$POSTLINK_DEMO_USER" --to "bob@$POSTLINK_DOMAIN" \
    --header "Subject: trust me" --header "Message-Id: $S" --add-header "Jabber-ID: alice@$XD" \
    --add-header "X-Mail-Id: $MAILID" \
    --add-header "X-Postlink-Tag: v=3; k=k1; t=$(date +%s); bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; s=forged" \
    --add-header "X-Messenger-Presence: online" >/dev/null 2>&1
if f=$(bob_copy "$S") && ! grep -qiE '^(X-Postlink-Tag|X-Messenger-Presence):' "$f"; then
    tag_headers "$f"; ok "tag and presence stripped; the Jabber-ID his program wrote stays, but shows nothing"
else
    bad "the forgery survived"
fi

step "someone who saw alice's first mail copies its tag onto a new Subject and body: nothing is shown"
R="<demo-replay.$RANDOM@elsewhere.example>"
F1=$(bob_copy "$T1")
if [ -n "$F1" ]; then
    hdr() { grep -i "^$1:" "$F1" | head -1 | sed 's/^[^:]*: *//' | tr -d '\r'; }
    swaks --server 127.0.0.1 --port "$POSTLINK_SMTP_PORT" --from "$POSTLINK_DEMO_USER" --to "bob@$POSTLINK_DOMAIN" \
        --header "Subject: send the money to this account" --header "Message-Id: $R" \
        --header "Date: $(hdr Date)" --header "To: $(hdr To)" --header "From: $(hdr From)" \
        --add-header "Jabber-ID: $(hdr Jabber-ID)" --add-header "X-Mail-Id: $(hdr X-Mail-Id)" \
        --add-header "X-Postlink-Tag: $(hdr X-Postlink-Tag)" --body "a different body" >/dev/null 2>&1
fi
if [ -n "$F1" ] && f=$(bob_copy "$R") && ! grep -qiE '^X-Messenger-(Presence|Chat):' "$f"; then
    tag_headers "$f"; ok "the tag signs From, Subject, To, Cc, Date, the MIME and thread fields and the body: a changed copy shows no presence"
else
    bad "a changed copy of a tagged mail still showed presence"
fi
