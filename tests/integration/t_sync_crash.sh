#!/usr/bin/env bash
# t_sync_crash.sh -- capability 1: postlink-syncd is SIGKILLed at each step
# of handling a control (after receiving it, after committing state and
# outbox, after handing a copy to Postfix but before forgetting it).  Each
# time Postfix keeps the control and retries, and afterwards the state is
# applied exactly once and the copy has reached the other devices.
set -u
. "${abs_top_srcdir:-.}/tests/integration/tap.sh"
. "$abs_top_srcdir/tests/harness/harness.sh"
. "$abs_top_srcdir/tests/harness/sync.sh"

h_init || exit 1
mkdir -m 0700 "$H_DIR/crash" && chown postlink "$H_DIR/crash"   # syncd runs as the store's owner
export POSTLINK_SYNCD_CRASH_FILE=$H_DIR/crash/step
h_start_sink && h_start_dovecot && hs_setup && h_start_postfix && hs_start || {
    tap_fail "harness starts"; tap_done; exit 1; }

U=$POSTLINK_DEMO_USER PW=$POSTLINK_DEMO_PASS
PHONE=alice-phone@devices.test DESK=alice-desk@devices.test
for d in $PHONE $DESK; do "$POSTLINKCTL" device add "$U" "$d" >/dev/null; done
version() { "$POSTLINKCTL" state show "$U" "$1" --json | jq '.[0].version'; }
words=(read saved deleted)
n=0
for step in received committed injected; do
    M=$(hs_msgid "t-$step") C=$(hs_msgid "c-$step")
    hs_send "$POSTLINK_SMTP_PORT" friend@elsewhere.example "$U" --header "Message-Id: $M" >/dev/null
    n=$((n + 1)); h_wait_maildir_files alice $n
    echo "$step" >"$POSTLINK_SYNCD_CRASH_FILE"
    out=$(hs_send "$POSTLINK_SUBMISSION_PORT" "$PHONE" "$U" --auth-user "$U" --auth-password "$PW" \
        --header "Message-Id: $C" --add-header "X-Control: ${words[$((n - 1))]}" --add-header "X-Control-Target: $M")
    end=$((SECONDS + 15))
    while h__alive "$HS_SYNCD_PID" && [ $SECONDS -lt $end ]; do sleep 0.1; done
    tap_check "$step: postlink-syncd was killed at that step" test ! -e "$POSTLINK_SYNCD_CRASH_FILE"
    tap_check "$step: Postfix still holds the control" sh -c "postqueue -c '$H_DIR/postfix/etc' -p | grep -q 'sync.postlink.invalid'"
    hs_start_syncd
    hs_wait_sink_grep "Message-I[Dd]: $C" 1 20
    tap_check "$step: after the restart the copy reached the desk" \
        sh -c "grep -l 'X-Control-Target: $M' '$POSTLINK_SINK_DIR'/* | xargs grep -q 'X-Envelope-To: <$DESK>'"
    h_wait_queue_empty 30 sync.postlink.invalid 2>/dev/null
    tap_check "$step: the control left Postfix's queue (delivered)" \
        sh -c "! postqueue -c '$H_DIR/postfix/etc' -p | grep -q sync.postlink.invalid"
    tap_check "$step: the state was applied exactly once (version $n)" test "$(version "$M")" = $n
done
c=$(grep -l 'X-Control-Target: ' "$POSTLINK_SINK_DIR"/* | wc -l)
tap_check "copies handed over: one per control, plus at most one repeat for the 'injected' crash ($c)" \
    test "$c" -ge 3 -a "$c" -le 4
tap_done
