#!/usr/bin/env bash
# t_sync.sh -- capability 1 end to end through a private Postfix: alice has
# three devices at the sink; ordinary mail reaches all of them; a control
# from one device changes the state and is fanned out to the other two; a
# control that comes first waits for its target; conflicts, duplicates,
# resync, peers and peer-to-peer controls.  Security and bad input are in
# t_sync_security.sh, crashes in t_sync_crash.sh.
set -u
. "${abs_top_srcdir:-.}/tests/integration/tap.sh"
. "$abs_top_srcdir/tests/harness/harness.sh"
. "$abs_top_srcdir/tests/harness/sync.sh"

h_init || exit 1
h_start_sink && h_start_dovecot && hs_setup && h_start_postfix && hs_start || {
    tap_fail "harness with postlink-sync and postlink-syncd starts"; tap_done; exit 1; }
tap_ok "harness with postlink-sync and postlink-syncd starts"

U=$POSTLINK_DEMO_USER PW=$POSTLINK_DEMO_PASS
PHONE=alice-phone@devices.test DESK=alice-desk@devices.test PAGER=alice-pager@pager.test
for d in $PHONE $DESK $PAGER; do "$POSTLINKCTL" device add "$U" "$d" >/dev/null; done
SUB=$POSTLINK_SUBMISSION_PORT MX=$POSTLINK_SMTP_PORT

# send_ctl DEVICE WORD MSGID TARGET... : a control from DEVICE, as alice.
send_ctl() {
    local dev=$1 word=$2 id=$3 hdrs=()
    shift 3
    for t in "$@"; do hdrs+=(--add-header "X-Control-Target: $t"); done
    hs_send "$SUB" "$dev" "$U" --auth-user "$U" --auth-password "$PW" \
        --header "Message-Id: $id" --header "Subject: ctl" \
        --add-header "X-Control: $word" "${hdrs[@]}" --body "control"
}
state_json() { "$POSTLINKCTL" state show "$U" ${1+"$1"} --json 2>/dev/null; }
# state_is MSGID JQ-FILTER: wait (up to 15 s) until the state matches: a
# control's 250 from Postfix comes before postlink-syncd has applied it
state_is() {
    local end=$((SECONDS + 15))
    until jq_true "$2" "$(state_json "$1")"; do [ $SECONDS -ge $end ] && return 1; sleep 0.1; done
}
# envelope recipients of the sink files that contain PATTERN, sorted
sink_rcpts() { hs_sink_grep "$1" | xargs -r grep -h '^X-Envelope-To:' | sed 's/^X-Envelope-To: *//; s/[<>\r]//g' | sort | tr '\n' ' '; }

# --- 1. ordinary mail reaches the mailbox and every device ---------------
M1=$(hs_msgid m1)
hs_send "$MX" stranger@elsewhere.example "$U" --header "Message-Id: $M1" --header "Subject: hello" >/dev/null
h_wait_maildir_files alice 1 && hs_wait_sink_grep "$M1" 1
tap_check "ordinary mail lands in alice's mailbox" grep -qs "$M1" "$(h__maildir alice)"/new/*
tap_check "and a copy reaches each of her three devices (same Message-ID)" \
    test "$(sink_rcpts "$M1")" = "$DESK $PAGER $PHONE "
tap_check "the store knows the message arrived, no state yet" \
    jq_true '.[0].arrived > 0 and .[0].states == [] and .[0].version == 0' "$(state_json "$M1")"

# --- 2. a control from the phone: applied and fanned out to the others --
C1=$(hs_msgid c1)
out=$(send_ctl "$PHONE" read "$C1" "$M1")
tap_check "the phone's control is accepted (250)" grep -q '<-  250 .*queued' <<<"$out"
hs_wait_sink_grep "X-Postlink-Forwarded" 2
tap_check "its copy goes to the desk and the pager, not back to the phone" \
    test "$(sink_rcpts "X-Postlink-Forwarded: by mail.postlink.test; user=$U; from=$PHONE")" = "$DESK $PAGER "
f=$(hs_sink_grep "X-Postlink-Forwarded" | head -1)
tap_check "the copy carries X-Control, X-Control-Target and the control's Message-ID" \
    sh -c "grep -q '^X-Control: read' '$f' && grep -q '^X-Control-Target: $M1' '$f' && grep -qi '^Message-ID: $C1' '$f'"
tap_check "the state is read, version 1" state_is "$M1" '.[0].states == ["read"] and .[0].version == 1'
tap_check "the control itself is consumed (alice's mailbox still holds 1 message)" \
    test "$(h_count_maildir_files alice)" = 1

# --- 3. the same control again (same Message-ID) is applied once --------
out=$(send_ctl "$PHONE" read "$C1" "$M1")
tap_check "a duplicate control is accepted (250)" grep -q '<-  250 .*queued' <<<"$out"
tap_check "postlink-syncd counts it as a duplicate and queues no copy" \
    hs_wait_log "$H_SYNC/syncd.log" "control $C1 read .* duplicate=1 copies=0 "
hs_marker "$U" "$PW" "$PAGER"
tap_check "once a later marker has come through, still only the first two copies exist" \
    test "$(hs_sink_grep "Message-I[Dd]: $C1" | wc -l)" = 2

# --- 4. a control that comes before its target waits for it -------------
M2=$(hs_msgid m2) C2=$(hs_msgid c2)
send_ctl "$DESK" saved "$C2" "$M2" >/dev/null
pending_is() {
    local end=$((SECONDS + 15))
    until jq_true "$1" "$("$POSTLINKCTL" pending list "$U" --json)"; do [ $SECONDS -ge $end ] && return 1; sleep 0.1; done
}
tap_check "a control for a message not seen yet is pending" \
    pending_is 'length == 1 and .[0].target == "'"$M2"'" and .[0].state == "saved" and .[0].expired == false'
tap_diag "target follows 10 s later"
sleep 10
hs_send "$MX" stranger@elsewhere.example "$U" --header "Message-Id: $M2" --header "Subject: late" >/dev/null
hs_wait_sink_grep "$M2" 2
tap_check "the target reaches the devices with X-Postlink-State: saved" \
    sh -c "grep -l '^X-Postlink-State: saved' \$(grep -l 'Message-Id: $M2' '$POSTLINK_SINK_DIR'/*) | grep -q ."
h_wait_maildir_files alice 2
tap_check "and alice's mailbox copy carries it too" grep -qs '^X-Postlink-State: saved' $(grep -ls "$M2" "$(h__maildir alice)"/new/*)
tap_check "the held control is fanned out now, to all but the desk" \
    test "$(sink_rcpts "from=$DESK")" = "$PAGER $PHONE "
tap_check "nothing is pending any more; the state is saved" \
    sh -c "test \"\$('$POSTLINKCTL' pending list '$U' --json)\" = '[]'" 
tap_check "state of the late target is saved" state_is "$M2" '.[0].states == ["saved"]'

# --- 5. conflicts: the later change wins, a stale one changes nothing ---
C3=$(hs_msgid c3) C4=$(hs_msgid c4)
hs_send "$SUB" "$DESK" "$U" --auth-user "$U" --auth-password "$PW" --header "Message-Id: $C3" \
    --header "Date: $(date -R -d '+1 minute')" --add-header "X-Control: unread" \
    --add-header "X-Control-Target: $M1" >/dev/null
hs_send "$SUB" "$PAGER" "$U" --auth-user "$U" --auth-password "$PW" --header "Message-Id: $C4" \
    --header "Date: $(date -R -d '-1 hour')" --add-header "X-Control: read" \
    --add-header "X-Control-Target: $M1" >/dev/null
hs_wait_sink_grep "Message-I[Dd]: $C3" 1
tap_check "postlink-syncd counted the older control as stale, queued no copy" \
    hs_wait_log "$H_SYNC/syncd.log" "control $C4 read .* stale=1 .*copies=0"
tap_check "the newer unread wins over an older read that arrives later" \
    jq_true '.[0].states == [] and .[0].version == 3' "$(state_json "$M1")"
hs_marker "$U" "$PW" "$PAGER"
tap_check "the stale control is fanned out to no one (checked after a later marker)" test -z "$(hs_sink_grep "$C4")"

# --- 6. replied keeps read; deleted then undeleted restores -------------
send_ctl "$PHONE" read "$(hs_msgid c5)" "$M2" >/dev/null
send_ctl "$PHONE" replied "$(hs_msgid c6)" "$M2" >/dev/null
send_ctl "$PHONE" deleted "$(hs_msgid c7)" "$M2" >/dev/null
tap_check "read + replied + deleted" state_is "$M2" '.[0].states == ["read","replied","saved","deleted"]'
send_ctl "$PHONE" undeleted "$(hs_msgid c8)" "$M2" >/dev/null
tap_check "undeleted restores the rest" state_is "$M2" '.[0].states == ["read","replied","saved"]'

# --- 7. resync: one mail listing what changed since version N -----------
V=$(state_json | jq '[.[].version] | max')
RS=$(hs_msgid rs)
hs_send "$SUB" "$PAGER" "$U" --auth-user "$U" --auth-password "$PW" --header "Message-Id: $RS" \
    --add-header "X-Control: resync" --add-header "X-Control-Since: 2" >/dev/null
hs_wait_sink_grep "In-Reply-To: $RS" 1
f=$(hs_sink_grep "In-Reply-To: $RS")
tap_check "resync is answered to the asking device only" test "$(sink_rcpts "In-Reply-To: $RS")" = "$PAGER "
tap_check "its body lists each message changed after version 2 with states and version" \
    sh -c "grep -q '^$M2 read,replied,saved $V' '$f' && grep -q '^$M1 - 3' '$f'"

# --- 8. a configured peer server may send controls without SASL ---------
C9=$(hs_msgid c9)
hs_send "$MX" "$PAGER" "$U" --local-interface 127.0.0.2 --header "Message-Id: $C9" \
    --header "Date: $(date -R -d '+2 minutes')" \
    --add-header "X-Control: read" --add-header "X-Control-Target: $M1" \
    --add-header "X-Postlink-Forwarded: by upper.example; user=alice@upper.example" >/dev/null
hs_wait_sink_grep "Message-I[Dd]: $C9" 2
tap_check "a control from a sync peer (127.0.0.2) is applied" state_is "$M1" '.[0].states == ["read"]'
tap_check "and fanned out to the other devices" test "$(sink_rcpts "Message-I[Dd]: $C9")" = "$DESK $PHONE "

# --- 9. peer to peer: a device writes straight to another device --------
C10=$(hs_msgid c10)
hs_send "$SUB" "$PHONE" "$DESK" --auth-user "$U" --auth-password "$PW" --header "Message-Id: $C10" \
    --header "To: <$DESK>" --add-header "X-Control: deleted" --add-header "X-Control-Target: $M1" >/dev/null
hs_wait_sink_grep "Message-I[Dd]: $C10" 2
tap_check "a device-to-device control reaches its device and is applied by the server" \
    state_is "$M1" '.[0].states == ["read","deleted"]'
tap_check "the server fans it out to the remaining device only (pager)" \
    test "$(sink_rcpts "Message-I[Dd]: $C10")" = "$DESK $PAGER "

# --- 10. removing a device stops its copies ------------------------------
"$POSTLINKCTL" device del "$U" "$PAGER" >/dev/null
M3=$(hs_msgid m3)
hs_send "$MX" stranger@elsewhere.example "$U" --header "Message-Id: $M3" >/dev/null
hs_wait_sink_grep "$M3" 1
queue_empty() {
    local end=$((SECONDS + 15))
    until postqueue -c "$H_DIR/postfix/etc" -p | grep -q 'Mail queue is empty'; do [ $SECONDS -ge $end ] && return 1; sleep 0.1; done
}
tap_check "Postfix is done with the message (its queue is empty)" queue_empty
tap_check "after device del the pager gets no copy" test "$(sink_rcpts "$M3")" = "$DESK $PHONE "
tap_done
