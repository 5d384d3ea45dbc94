# demo-sync.sh -- the message-state sync story of ./demo.sh (sourced by it):
# alice has three devices; ordinary mail reaches all of them; her phone
# marks a message read and the other two receive the control, and her own
# IMAP mailbox shows it \Seen to any mail client; her desk
# marks a message saved before it has arrived, and the state rides on the
# message when it does.
U=$POSTLINK_DEMO_USER
PHONE=alice-phone@devices.example DESK=alice-desk@devices.example PAGER=alice-pager@pager.example
# imap_talk MESSAGE-ID: find that message in alice's INBOX and fetch its
# FLAGS over IMAP, logged in as alice like her own mail client (curl);
# prints the commands (->) and Dovecot's answers (<-)
imap_talk() {
    local url="imap://127.0.0.1:$POSTLINK_IMAP_PORT/INBOX" id=${1#<} out n
    id=${id%>}
    out=$(curl -s --max-time 10 --user "$U:$POSTLINK_DEMO_PASS" "$url" -X "SEARCH HEADER Message-ID \"$id\"" | tr -d '\r')
    printf -- '-> SEARCH HEADER Message-ID "%s"\n' "$id"
    printf '%s\n' "$out" | sed '/^$/d; s/^/<- /'
    n=$(awk '/^\* SEARCH/ {print $3; exit}' <<<"$out")
    [ -n "$n" ] || return 1
    printf -- '-> FETCH %s FLAGS\n' "$n"
    curl -s --max-time 10 --user "$U:$POSTLINK_DEMO_PASS" "$url" -X "FETCH $n FLAGS" | tr -d '\r' | sed 's/^/<- /'
}
imap_flags() { imap_talk "$1" | grep '^<- \* [0-9]* FETCH'; }
# imap_wait_flag MESSAGE-ID FLAG: until alice's IMAP client sees FLAG on it (15 s)
imap_wait_flag() {
    local end=$((SECONDS + 15))
    until imap_flags "$1" | grep -qF "$2"; do [ $SECONDS -ge $end ] && return 1; sleep 0.2; done
}
sink_to() { hs_sink_grep "$1" | xargs -r grep -h '^X-Envelope-To:' | tr -d '\r<>' | sed 's/X-Envelope-To: */    | to /'; }

step "register alice's three devices"
for d in "$PHONE:phone" "$DESK:desk" "$PAGER:pager"; do
    "$CTL" device add "$U" "${d%%:*}" --name "${d#*:}" 2>&1 | show
done
"$CTL" device list "$U" | show

step "a stranger mails alice: her mailbox and each of her devices get it, same Message-ID"
M1="<demo-m1.$$@elsewhere.example>"
hs_send "$POSTLINK_SMTP_PORT" stranger@elsewhere.example "$U" --header "Message-Id: $M1" \
    --header "Subject: lunch?" >/dev/null
if h_wait_maildir_files alice 1 15 && hs_wait_sink_grep "$M1" 1 15; then
    ok "in alice's mailbox, and at the sink for:"; sink_to "$M1"
    imap_talk "$M1" | show
    if imap_flags "$M1" | grep -q 'FLAGS' && ! imap_flags "$M1" | grep -qF '\Seen'; then
        ok "alice's IMAP client sees it, not yet read (no \\Seen)"
    else
        bad "alice's IMAP client does not see it unread"
    fi
else
    bad "the message did not reach everything"
fi

step "alice reads it on her phone: the phone sends a control to alice's own address"
C1="<demo-c1.$$@devices.example>"
hs_send "$POSTLINK_SUBMISSION_PORT" "$PHONE" "$U" --auth-user "$U" --auth-password "$POSTLINK_DEMO_PASS" \
    --header "Message-Id: $C1" --header "Subject: state" --add-header "X-Control: read" \
    --add-header "X-Control-Target: $M1" | grep -E '^ *<- *250 .*queued|^ *-> X-Control' | show
if hs_wait_sink_grep "Message-I[Dd]: $C1" 1 15; then
    ok "the control was consumed, the state recorded, and copies went to:"; sink_to "Message-I[Dd]: $C1"
    grep -hE '^X-(Control|Postlink)[^:]*:' $(hs_sink_grep "Message-I[Dd]: $C1" | head -1) | tr -d '\r' | show
else
    bad "no copies of the control"
fi
"$CTL" state show "$U" "$M1" | show

step "alice opens her mailbox over IMAP on another computer: the message is \\Seen there too"
if imap_wait_flag "$M1" '\Seen'; then
    imap_talk "$M1" | show
    grep -F "imap: $U" "$H_SYNC/syncd.log" | tail -1 | sed 's/^.*imap: /postlink-syncd log: imap: /' | show
    ok "postlink-syncd set \\Seen on alice's copy (imap_url); any IMAP client sees it read"
else
    imap_talk "$M1" | show
    bad "alice's IMAP mailbox does not show the message \\Seen"
fi

step "alice saves a message on her desk before it has reached the relay"
M2="<demo-m2.$$@elsewhere.example>" C2="<demo-c2.$$@devices.example>"
hs_send "$POSTLINK_SUBMISSION_PORT" "$DESK" "$U" --auth-user "$U" --auth-password "$POSTLINK_DEMO_PASS" \
    --header "Message-Id: $C2" --add-header "X-Control: saved" --add-header "X-Control-Target: $M2" >/dev/null
sleep 1
"$CTL" pending list "$U" | show
if "$CTL" pending list "$U" --json | jq -e 'length == 1' >/dev/null; then ok "held until the target arrives"
else bad "the control was not held"; fi

step "the message arrives: it carries X-Postlink-State and the held control is fanned out now"
hs_send "$POSTLINK_SMTP_PORT" stranger@elsewhere.example "$U" --header "Message-Id: $M2" \
    --header "Subject: the contract" >/dev/null
if hs_wait_sink_grep "Message-I[Dd]: $C2" 1 15 && hs_wait_sink_grep "$M2" 1 15; then
    grep -h '^X-Postlink-State:' $(hs_sink_grep "Message-Id: $M2" | head -1) | tr -d '\r' | show
    ok "the saved control went to:"; sink_to "Message-I[Dd]: $C2"
else
    bad "the held control was not released"
fi
"$CTL" state show "$U" | show
