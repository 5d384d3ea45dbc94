#!/usr/bin/env bash
# t_sync_faults.sh -- capability 1 when something fails half-way, through
# a private Postfix:
#   - one of alice's devices is refused (5xx at RCPT) by the re-injection
#     listener: her other devices still get their copy of each control, the
#     refused one is logged (each copy is its own outbox entry);
#   - the milter tempfails an ordinary mail after it has recorded the mail
#     as seen (test hook POSTLINK_TEST_FAIL_AFTER_SEEN, once): the control
#     held for it stays pending, and the mail resent later releases it;
#   - the store stays busy for longer than postlink-syncd's retries (a test
#     tool holds a write lock on alice's version record): postlink-syncd
#     answers Postfix 4xx, Postfix keeps the control, and once the lock is
#     gone the retried control is applied.
set -u
. "${abs_top_srcdir:-.}/tests/integration/tap.sh"
. "$abs_top_srcdir/tests/harness/harness.sh"
. "$abs_top_srcdir/tests/harness/sync.sh"

h_init || exit 1
BROKEN=alice-broken@devices.test
HS_REINJECT_REJECT=$BROKEN
MFAIL=$(hs_msgid fail-after-seen)
mkdir -m 0700 "$H_DIR/hook" && chown postlink "$H_DIR/hook"   # the milter may run as postlink
export POSTLINK_TEST_FAIL_AFTER_SEEN=$H_DIR/hook/fail-after-seen
echo "$MFAIL" >"$POSTLINK_TEST_FAIL_AFTER_SEEN"
h_start_sink && h_start_dovecot && hs_setup && h_start_postfix && hs_start || {
    tap_fail "harness starts"; tap_done; exit 1; }
tap_ok "harness starts"

U=$POSTLINK_DEMO_USER PW=$POSTLINK_DEMO_PASS
PHONE=alice-phone@devices.test DESK=alice-desk@devices.test PAGER=alice-pager@pager.test
for d in $PHONE $DESK $BROKEN $PAGER; do "$POSTLINKCTL" device add "$U" "$d" >/dev/null; done
SUB=$POSTLINK_SUBMISSION_PORT MX=$POSTLINK_SMTP_PORT PF=$H_DIR/postfix/etc
send_ctl() {   # send_ctl DEVICE WORD MSGID TARGET
    hs_send "$SUB" "$1" "$U" --auth-user "$U" --auth-password "$PW" --header "Message-Id: $3" \
        --header "Subject: ctl" --add-header "X-Control: $2" --add-header "X-Control-Target: $4"
}
state_json() { "$POSTLINKCTL" state show "$U" "$1" --json 2>/dev/null; }
state_is() {
    local end=$((SECONDS + ${3:-15}))
    until jq_true "$2" "$(state_json "$1")"; do [ $SECONDS -ge $end ] && return 1; sleep 0.1; done
}
sink_rcpts() { hs_sink_grep "$1" | xargs -r grep -h '^X-Envelope-To:' | sed 's/^X-Envelope-To: *//; s/[<>\r]//g' | sort | tr '\n' ' '; }
in_queue() { postqueue -c "$PF" -p 2>/dev/null | grep -q 'sync.postlink.invalid'; }

# --- one device refused at RCPT: the others still get their copies --------
M1=$(hs_msgid m1) C1=$(hs_msgid c1)
hs_send "$MX" friend@elsewhere.example "$U" --header "Message-Id: $M1" >/dev/null
h_wait_maildir_files alice 1
out=$(send_ctl "$PHONE" read "$C1" "$M1")
tap_check "a control from the phone is accepted (250)" grep -q '<-  250 .*queued' <<<"$out"
hs_wait_sink_grep "Message-I[Dd]: $C1" 2
tap_check "the desk and the pager get their copy though $BROKEN is refused ($(sink_rcpts "Message-I[Dd]: $C1"))" \
    test "$(sink_rcpts "Message-I[Dd]: $C1")" = "$DESK $PAGER "
tap_check "postlink-syncd logs the refused device's copy as dropped" \
    hs_wait_log "$H_SYNC/syncd.log" "to <$BROKEN> dropped, refused for good: .*550"
tap_check "and the state is applied" state_is "$M1" '.[0].states == ["read"]'

# --- a tempfail after the seen stage releases nothing ----------------------
C2=$(hs_msgid c2)
send_ctl "$DESK" saved "$C2" "$MFAIL" >/dev/null
pending_is() { local end=$((SECONDS + 15))
    until jq_true "$1" "$("$POSTLINKCTL" pending list "$U" --json)"; do [ $SECONDS -ge $end ] && return 1; sleep 0.1; done; }
tap_check "a control for a message not seen yet is held" \
    pending_is 'length == 1 and .[0].target == "'"$MFAIL"'" and .[0].expired == false'
out=$(hs_send "$MX" friend@elsewhere.example "$U" --header "Message-Id: $MFAIL" --header "Subject: target")
tap_check "the milter tempfails the target after the seen stage (test hook)" grep -q '<\*\* *451 ' <<<"$out"
tap_check "the milter logged the test hook loudly" \
    grep -q "TEST HOOK POSTLINK_TEST_FAIL_AFTER_SEEN: failing $MFAIL" "$H_SYNC/milter.log"
tap_check "the held control is still pending (postlinkctl pending list)" \
    pending_is 'length == 1 and .[0].target == "'"$MFAIL"'" and .[0].state == "saved"'
tap_check "the target is not recorded as arrived (postlinkctl: no such message)" \
    sh -c "! '$POSTLINKCTL' state show '$U' '$MFAIL' >/dev/null 2>&1"
tap_check "the hook fired once (its file is gone)" test ! -e "$POSTLINK_TEST_FAIL_AFTER_SEEN"
out=$(hs_send "$MX" friend@elsewhere.example "$U" --header "Message-Id: $MFAIL" --header "Subject: target")
tap_check "resent, the target is accepted" grep -q '<-  250 .*queued' <<<"$out"
hs_wait_sink_grep "Message-I[Dd]: $C2" 2
tap_check "and releases the held control: copies to the phone and the pager" \
    test "$(sink_rcpts "Message-I[Dd]: $C2")" = "$PAGER $PHONE "
tap_check "nothing is pending any more" pending_is 'length == 0'
tap_check "the target's state is saved" state_is "$MFAIL" '.[0].states == ["saved"]'
hs_wait_sink_grep "^X-Postlink-State: saved" 1
tap_check "and the target reached the devices with X-Postlink-State: saved" \
    test -n "$(grep -l '^X-Postlink-State: saved' $(hs_sink_grep "Message-Id: $MFAIL"))"

# --- the store busy for longer than postlink-syncd's retries ---------------
M3=$(hs_msgid m3) C3=$(hs_msgid c3)
hs_send "$MX" friend@elsewhere.example "$U" --header "Message-Id: $M3" >/dev/null
h_wait_maildir_files alice 3
LOCK_OUT=$H_DIR/store-lock.out
# held until Postfix has logged the deferral (postlink-syncd gives up after
# 10 lock waits of db_lock_timeout each), at most 90 s
"$abs_top_builddir/tests/tools/pl-store-lock" -h "$POSTLINK_DB_HOME" -t uver -k "$U" -s 90 \
    >"$LOCK_OUT" 2>&1 &
LOCK_PID=$!
h_register lock "$LOCK_PID"
tap_check "the test tool holds a write lock on alice's version record" hs_wait_log "$LOCK_OUT" '^locked'
out=$(send_ctl "$PHONE" read "$C3" "$M3")
tap_check "Postfix accepts the control (250)" grep -q '<-  250 .*queued' <<<"$out"
tap_check "postlink-syncd answers Postfix 4xx when the store stays busy (deferred)" \
    hs_wait_log "$H_DIR/postfix/maillog" "sync.postlink.invalid>.*status=deferred.*451 4.3.0 postlink state store busy" 60
tap_check "Postfix still holds the control" in_queue
tap_check "the control is not applied meanwhile" jq_true '.[0].states == [] and .[0].version == 0' "$(state_json "$M3")"
kill -TERM "$LOCK_PID"
wait "$LOCK_PID"
tap_check "the lock is released" grep -q '^released' "$LOCK_OUT"
postqueue -c "$PF" -f
tap_check "retried (postqueue -f), the control is applied" state_is "$M3" '.[0].states == ["read"]' 30
end=$((SECONDS + 15))
while in_queue && [ $SECONDS -lt $end ]; do sleep 0.2; done
tap_check "and has left Postfix's queue" sh -c "! postqueue -c '$PF' -p | grep -q sync.postlink.invalid"
hs_wait_sink_grep "Message-I[Dd]: $C3" 2
tap_check "its copies reached the desk and the pager" test "$(sink_rcpts "Message-I[Dd]: $C3")" = "$DESK $PAGER "
tap_done
