#!/usr/bin/env bash
# t_push_retain.sh -- capability 5's retention rule: nothing leaves the push
# store silently.  Mail over push_max_count is bounced to its sender (a
# delivery status notification through Postfix, seen at the sink) or, with
# push_over_action = drop, removed; either way logged.  Mail from the null
# sender is never bounced.  Mail older than push_max_age and processed
# entries older than push_processed_age go when postlink-pushd runs 31
# days later (libfaketime).
set -u
. "${abs_top_srcdir:-.}/tests/integration/tap.sh"
. "$abs_top_srcdir/tests/harness/harness.sh"
. "$abs_top_srcdir/tests/harness/sync.sh"
. "$abs_top_srcdir/tests/harness/push.sh"

h_init || exit 1
HP_USERS="bob"
HP_CONF_EXTRA="push_max_count = 2
push_over_action = bounce"
h_start_sink && h_start_dovecot && hp_setup && h_start_postfix && hp_start_pushd ||
    { tap_fail "harness starts"; tap_done; exit 1; }
tap_ok "harness with postlink-pushd starts (push_max_count = 2, bounce)"

B=bob@$POSTLINK_DOMAIN
tap_check "device add bob/phone" hp_device "$B" phone
queue_json() { "$POSTLINKCTL" push queue "$1" --json; }
# the senders of bob's messages, in order (read from the store: fetching
# them would make them sent, and a sent message is not taken from a device)
senders() { queue_json "$B" | jq -r '.messages[].sender' | tr '\n' ' '; }

# --- count: bounce ----------------------------------------------------------
for i in 1 2 3; do hp_send "$B" "count $i" --from "stranger$i@remote.invalid" --body "m$i"; done
tap_check "three messages stored" hp_wait_stored 3
tap_check "the oldest is bounced for push_max_count, logged" \
    hs_wait_log "$H_SYNC/pushd.log" "from <stranger1@remote.invalid> .* over push_max_count before every device fetched it: .*bounced to the sender" 15
tap_check "the bounce reached stranger1 (at the sink)" \
    hs_wait_sink_grep "X-Envelope-To: <stranger1@remote.invalid>" 1
f=$(hs_sink_grep "X-Envelope-To: <stranger1@remote.invalid>" | head -n 1)
tap_check "... from the null sender" grep -q "^X-Envelope-From: <>" "$f"
tap_check "... a delivery status notification for bob (Status 5.2.2)" \
    sh -c "grep -q 'report-type=delivery-status' '$f' && grep -q 'Final-Recipient: rfc822; $B' '$f' && grep -q 'Status: 5.2.2' '$f'"
tap_check "... with the original's header" grep -q "^Subject: count 1" "$f"
tap_check "two messages left, the newest two" test "$(senders)" = "stranger2@remote.invalid stranger3@remote.invalid "

# --- the null sender: never bounced ---------------------------------------------
hp_send "$B" "from nobody" --from '<>' --body "null sender"
tap_check "a message from the null sender is stored" hp_wait_stored 4
tap_check "the oldest (count 2) is bounced" \
    hs_wait_log "$H_SYNC/pushd.log" "from <stranger2@remote.invalid> .* bounced to the sender" 15
hp_send "$B" "count 4" --from "stranger4@remote.invalid" --body "m4"
tap_check "then count 3" \
    hs_wait_log "$H_SYNC/pushd.log" "from <stranger3@remote.invalid> .* bounced to the sender" 15
hp_send "$B" "count 5" --from "stranger5@remote.invalid" --body "m5"
tap_check "then the null sender's message: dropped, not bounced (nobody to bounce to)" \
    hs_wait_log "$H_SYNC/pushd.log" "from <> .* over push_max_count before every device fetched it: .*dropped" 15
tap_check "three bounces at the sink, for count 1, 2 and 3" \
    hs_wait_sink_grep "Undelivered Mail Returned to Sender" 3

# --- push_over_action = drop (SIGHUP) -----------------------------------------------
sed -i 's/^push_over_action = bounce$/push_over_action = drop/' "$POSTLINK_CONF"
n=$(grep -c "reloaded " "$H_SYNC/pushd.log")
kill -HUP "$HP_PUSHD_PID"
end=$(( $(h__ms) + 10000 ))
until [ "$(grep -c "reloaded " "$H_SYNC/pushd.log")" -gt "$n" ] || [ "$(h__ms)" -ge $end ]; do sleep 0.05; done
tap_check "SIGHUP: push_over_action = drop" test "$(grep -c "reloaded " "$H_SYNC/pushd.log")" -gt "$n"
hp_send "$B" "count 6" --from "stranger6@remote.invalid" --body "m6"
tap_check "the oldest (count 4) is dropped, logged" \
    hs_wait_log "$H_SYNC/pushd.log" "from <stranger4@remote.invalid> .* dropped (push_over_action = drop" 15
tap_check "no bounce went to stranger4" \
    sh -c "! grep -l 'X-Envelope-To: <stranger4@remote.invalid>' '$POSTLINK_SINK_DIR'/* >/dev/null 2>&1"
tap_check "two messages left: count 5 and count 6" test "$(senders)" = "stranger5@remote.invalid stranger6@remote.invalid "

# --- age, 31 days later -------------------------------------------------------------
hp_client "$B" phone get first >/dev/null
id5=$(queue_json "$B" | jq -r '.messages[0].id')
id6=$(queue_json "$B" | jq -r '.messages[1].id')
r=$(hp_client "$B" phone ack "$id5" --disp move)
tap_check "the phone moves count 5 to its processed store (count 6 is not fetched)" \
    test "$(queue_json "$B" | jq -r --arg id "$id5" '.messages[] | select(.id == $id) | .devices[0].state')" = moved
hs_kill "$HP_PUSHD_PID"
FT=/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1
HP_PUSHD_ENV="LD_PRELOAD=$FT FAKETIME=+31d" hp_start_pushd ||
    { tap_fail "postlink-pushd restarts 31 days on"; tap_done; exit 1; }
tap_check "31 days on: count 6, never acknowledged, goes by push_max_age (dropped)" \
    hs_wait_log "$H_SYNC/pushd.log" "message $id6 from <stranger6@remote.invalid> .* over push_max_age before every device fetched it: .*dropped" 15
tap_check "... and the processed entry by push_processed_age" \
    hs_wait_log "$H_SYNC/pushd.log" "removed 1 processed message(s) older than push_processed_age" 15
tap_check "bob's store is empty" jq_true '(.messages | length) == 0' "$(queue_json "$B")"

# --- the store busy for longer than pushd's retries: 4xx, Postfix keeps it --------
LOCK_OUT=$H_DIR/store-lock.out
"$abs_top_builddir/tests/tools/pl-store-lock" -h "$POSTLINK_DB_HOME" -t pseq -k "$B" -s 90 \
    >"$LOCK_OUT" 2>&1 &
LOCK_PID=$!
h_register lock "$LOCK_PID"
tap_check "the test tool holds a write lock on bob's order number" hs_wait_log "$LOCK_OUT" '^locked'
hp_send "$B" "while busy" --from "stranger7@remote.invalid" --body "m7"
tap_check "postlink-pushd answers Postfix 451 while the store stays busy (deferred)" \
    hs_wait_log "$H_DIR/postfix/maillog" "to=<$B>.*status=deferred.*451 4.3.0 postlink push store busy" 90
tap_check "... nothing was stored" test "$(grep -c ': stored [0-9a-f]\{32\} ' "$H_SYNC/pushd.log")" = 7
kill -TERM "$LOCK_PID"
wait "$LOCK_PID"
tap_check "the lock is released" grep -q '^released' "$LOCK_OUT"
postqueue -c "$H_DIR/postfix/etc" -f
tap_check "retried, the message is stored" hp_wait_stored 8 30
tap_check "... once" test "$(senders)" = "stranger7@remote.invalid "

# --- what a device was sent or keeps processed is not taken from it ---------------
mkdir -p "$H_DIR/empty"
hp_client "$B" phone drain --dir "$H_DIR/empty" >/dev/null
tap_check "the phone drains what is left" jq_true '(.messages | length) == 0' "$(queue_json "$B")"
tap_check "device add bob/tablet" hp_device "$B" tablet
sed -i 's/^push_over_action = drop$/push_over_action = bounce/' "$POSTLINK_CONF"
n=$(grep -c "reloaded " "$H_SYNC/pushd.log")
kill -HUP "$HP_PUSHD_PID"
end=$(( $(h__ms) + 10000 ))
until [ "$(grep -c "reloaded " "$H_SYNC/pushd.log")" -gt "$n" ] || [ "$(h__ms)" -ge $end ]; do sleep 0.05; done
tap_check "SIGHUP: push_over_action = bounce again" test "$(grep -c "reloaded " "$H_SYNC/pushd.log")" -gt "$n"
hp_send "$B" "y1" --from "y1@remote.invalid" --body y1
hp_send "$B" "y2" --from "y2@remote.invalid" --body y2
tap_check "y1 and y2 stored for the phone and the tablet" hp_wait_stored 10
y1=$(queue_json "$B" | jq -r '.messages[0].id') y2=$(queue_json "$B" | jq -r '.messages[1].id')
hp_client "$B" phone get first >/dev/null
hp_client "$B" phone get "$y2" --ack "$y1" --disp move >/dev/null
tap_check "the phone moved y1 to its processed store and was sent y2" \
    test "$(queue_json "$B" | jq -r '[.messages[].devices[] | select(.device == "phone") | .state] | join(" ")')" = "moved sent"
hp_send "$B" "y3" --from "y3@remote.invalid" --body y3
hp_send "$B" "y4" --from "y4@remote.invalid" --body y4
tap_check "over push_max_count, y2 leaves only the tablet's queue: not bounced, the phone has it" \
    hs_wait_log "$H_SYNC/pushd.log" "message $y2 from <y2@remote.invalid> .* taken from 1 device queue(s), not bounced (a device has it)" 15
tap_check "... and y1 likewise (the phone keeps it processed)" \
    hs_wait_log "$H_SYNC/pushd.log" "message $y1 from <y1@remote.invalid> .* taken from 1 device queue(s), not bounced" 15
tap_check "no bounce to y1 or y2" \
    sh -c "! grep -l 'X-Envelope-To: <y[12]@remote.invalid>' '$POSTLINK_SINK_DIR'/* >/dev/null 2>&1"
tap_check "the phone's processed copy of y1 is still there" \
    test "$(queue_json "$B" | jq -r --arg id "$y1" '.messages[] | select(.id == $id) | .devices[] | select(.device == "phone") | .state')" = moved
r=$(hp_client "$B" phone get first --ack "$y2")
tap_check "the phone's ack of y2 is taken, and it gets y3 ($r)" grep -q "^status=200 " <<<"$r"

h_stop_all
tap_done
