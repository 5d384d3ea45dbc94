#!/usr/bin/env bash
# t_sync_expiry.sh -- capability 1, the expiry path: with pending_ttl = 2s a
# control whose target never came expires (logged, listed with --expired,
# not applied when the target finally arrives) until it is purged.
set -u
. "${abs_top_srcdir:-.}/tests/integration/tap.sh"
. "$abs_top_srcdir/tests/harness/harness.sh"
. "$abs_top_srcdir/tests/harness/sync.sh"

h_init || exit 1
HS_CONF_EXTRA="pending_ttl = 2s"
h_start_sink && h_start_dovecot && hs_setup && h_start_postfix && hs_start || {
    tap_fail "harness starts"; tap_done; exit 1; }
U=$POSTLINK_DEMO_USER PHONE=alice-phone@devices.test DESK=alice-desk@devices.test
for d in $PHONE $DESK; do "$POSTLINKCTL" device add "$U" "$d" >/dev/null; done
M=$(hs_msgid late) C=$(hs_msgid ctl)
hs_send "$POSTLINK_SUBMISSION_PORT" "$PHONE" "$U" --auth-user "$U" --auth-password "$POSTLINK_DEMO_PASS" \
    --header "Message-Id: $C" --add-header "X-Control: deleted" --add-header "X-Control-Target: $M" >/dev/null
end=$((SECONDS + 15))
until grep -q 'pending control expired' "$H_SYNC/syncd.log" || [ $SECONDS -ge $end ]; do sleep 0.2; done
tap_check "postlink-syncd logs the expiry with user, target and control" \
    grep -q "pending control expired: user=$U target=$M state=deleted from=$PHONE control=$C" "$H_SYNC/syncd.log"
tap_check "pending list no longer shows it" test "$("$POSTLINKCTL" pending list "$U" --json)" = "[]"
tap_check "pending list --expired does" \
    jq_true 'length == 1 and .[0].expired and .[0].target == "'"$M"'"' "$("$POSTLINKCTL" pending list "$U" --expired --json)"
hs_send "$POSTLINK_SMTP_PORT" friend@elsewhere.example "$U" --header "Message-Id: $M" >/dev/null
h_wait_maildir_files alice 1 && hs_wait_sink_grep "$M" 1
tap_check "the target arriving late is not deleted: no X-Postlink-State, no state" \
    sh -c "! grep -qs '^X-Postlink-State' \$(grep -l -- '$M' '$POSTLINK_SINK_DIR'/*) && \
           '$POSTLINKCTL' state show '$U' '$M' --json | jq -e '.[0].states == []' >/dev/null"
# the milter logs a release after its commit (routine arrivals only with
# -v); the message at the sink comes after that commit
tap_check "the milter released no control for it (its own account, logged after the commit)" \
    sh -c "! grep -q 'message-id=$M .*released=[1-9]' '$H_SYNC/milter.log'"
hs_marker "$U" "$POSTLINK_DEMO_PASS" "$DESK"
tap_check "and, checked after a later marker, the expired control is not fanned out" \
    test -z "$(hs_sink_grep "Message-I[Dd]: $C")"
out=$("$POSTLINKCTL" pending purge "$U")
tap_check "pending purge deletes it ($out)" \
    sh -c "test '$out' = 'purged 1 expired pending control(s)' && test \"\$('$POSTLINKCTL' pending list '$U' --expired --json)\" = '[]'"
tap_done
