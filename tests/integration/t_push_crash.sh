#!/usr/bin/env bash
# t_push_crash.sh -- capability 5: no message silently dropped, none
# skipped, none acknowledged without having been sent, when postlink-pushd
# (and the device) are SIGKILLed.  Mail comes in through a private Postfix;
# the device is tests/tools/pl-push-client (drain: each message fsync'd to
# DIR/<id>.eml before its ack rides on the next request).
#   1. Deterministic, at the crash points (POSTLINK_PUSHD_CRASH_FILE):
#      a. "after-send" (the response went out in full, not yet recorded) on
#         the first fetch: the ack of that message is refused (409
#         ack-not-sent), it is offered again, and a full drain leaves each
#         message in the device's directory once;
#      b. the same on get=<4>&ack=<3>: neither the ack nor the sending is
#         recorded, 3 and 4 are offered again (2 redeliveries for 1 kill);
#      c. "after-apply" (recorded, not yet logged): nothing offered twice
#         (a device resuming with get=first&ack=<id> is not sent <id> again);
#      d. LMTP "before-commit": Postfix keeps the mail, delivers it after the
#         restart, stored once;
#      e. LMTP "after-commit" (committed, no 250 yet): Postfix delivers it
#         again and the repeat is recognised by its receipt: stored once.
#   2. PUSH_CRASH_MESSAGES (default 1000) messages through Postfix while a
#      device drains them and postlink-pushd is SIGKILLed at random moments
#      (PUSH_KILLS, default 15), the device now and then too: every message
#      Postfix accepted reaches the device, none twice (not even when
#      Postfix repeats a delivery whose 250 a kill cut off, 1e), each
#      message id once, offered again at most twice per kill, queues empty,
#      no message acknowledged that the device was not sent in full.
set -u
. "${abs_top_srcdir:-.}/tests/integration/tap.sh"
. "$abs_top_srcdir/tests/harness/harness.sh"
. "$abs_top_srcdir/tests/harness/sync.sh"
. "$abs_top_srcdir/tests/harness/push.sh"

N=${PUSH_CRASH_MESSAGES:-1000} KILLS=${PUSH_KILLS:-15}
h_init || exit 1
mkdir -m 0700 "$H_DIR/crash" && chown postlink "$H_DIR/crash"   # pushd runs as the store's owner
export POSTLINK_PUSHD_CRASH_FILE=$H_DIR/crash/step
h_start_sink && h_start_dovecot && hp_setup && h_start_postfix && hp_start_pushd || {
    tap_fail "harness starts"; tap_done; exit 1; }
B=bob@$POSTLINK_DOMAIN LOG=$H_SYNC/pushd.log
hp_device "$B" phone || { tap_fail "device bob/phone added"; tap_done; exit 1; }

# ---- helpers ---------------------------------------------------------------
# crash_at STEP: the next time pushd reaches STEP it kills itself
crash_at() { echo "$1" >"$POSTLINK_PUSHD_CRASH_FILE"; }
# wait_dead: until pushd is gone (bounded); fails if it is still running
wait_dead() {
    local end=$(( $(h__ms) + ${1:-15} * 1000 ))
    while h__alive "$HP_PUSHD_PID"; do
        [ "$(h__ms)" -ge $end ] && return 1
        sleep 0.02
    done
    wait "$HP_PUSHD_PID" 2>/dev/null
    return 0
}
queue_json() { "$POSTLINKCTL" push queue "$B" --json 2>/dev/null; }
queue_len() { queue_json | jq '.messages | length'; }
# field NAME LINE: the value of NAME= in a client output line
field() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2"; }
# seqs DIR: the X-Seq values of the messages in DIR, one a line
seqs() { cat /dev/null "$1"/*.eml 2>/dev/null | tr -d '\r' | sed -n 's/^X-Seq: //p'; }
neml() { find "$1" -maxdepth 1 -name '*.eml' | grep -c .; }
postfix_empty() { h_postqueue -p 2>/dev/null | grep -q "^Mail queue is empty"; }
wait_postfix_empty() { h_wait_queue_empty "${1:-30}" 2>>"$H_DIR/queue-waits.log"; }
# log_sent_before_deleted: every "deleted ID" line of pushd.log comes after
# a "sent ID" line; prints the ids for which it does not
log_sent_before_deleted() {
    awk '/: sent [0-9a-f]+ / { for (i = 1; i <= NF; i++) if ($i == "sent") s[$(i + 1)] = 1 }
         /: (deleted|moved) [0-9a-f]+/ { for (i = 1; i <= NF; i++)
             if (($i == "deleted" || $i == "moved") && $(i + 1) ~ /^[0-9a-f]+$/ && !s[$(i + 1)])
                 print $(i + 1) }' "$LOG"
}

# ---- 1a. killed after the response went out, before it was recorded --------
D1=$H_DIR/dev1
mkdir "$D1"
hp_send "$B" "one" --add-header "X-Seq: 1" && hp_send "$B" "two" --add-header "X-Seq: 2" &&
    hp_wait_stored 2 || { tap_fail "2 messages stored"; tap_done; exit 1; }
tap_ok "2 messages for bob came in through Postfix"
crash_at after-send
# the device fetches one message (the ack that would follow finds no server)
out=$(hp_client "$B" phone drain --dir "$D1" --max 1 --retry-for 0 2>/dev/null | head -n 1)
ID1=$(field id "$out") ID2=$(field next "$out")
tap_check "the device got message 1 in full ($out)" \
    test "$(field status "$out")" = 200 -a -s "$D1/$ID1.eml" -a "$(seqs "$D1")" = 1
tap_check "... and kept its ack for later in .pending" test "$(cat "$D1/.pending" 2>/dev/null)" = "$ID1"
tap_check "postlink-pushd killed itself after the response, before recording it" wait_dead
tap_check "... at that step" grep -q 'killed at step "after-send"' "$LOG"
hp_start_pushd || { tap_fail "postlink-pushd restarts"; tap_done; exit 1; }
j=$(queue_json)
tap_check "after the restart message 1 is still waiting (its sending was not recorded)" \
    jq_true "(.messages | length) == 2 and ([.messages[] | select(.id == \"$ID1\") | .devices[0].state] == [\"waiting\"])" "$j"
out=$(hp_client "$B" phone get "$ID2" --ack "$ID1" 2>/dev/null)
tap_check "the device's next request get=<2>&ack=<1> is refused: 409 ack-not-sent ($out)" \
    test "$(field status "$out")" = 409 -a "$(field error "$out")" = ack-not-sent
tap_check "... and changed nothing" \
    jq_true "[.messages[].devices[0].state] == [\"waiting\", \"waiting\"]" "$(queue_json)"
out=$(hp_client "$B" phone drain --dir "$D1" --retry-for 10 2>/dev/null | tail -n 1)
tap_check "a full drain ends: one new message, message 1 offered once more ($out)" \
    test "$(field redelivered "$out")" = 1 -a "$(field messages "$out")" = 1
tap_check "both messages are in the device's directory, each once" \
    test "$(neml "$D1")" = 2 -a "$(seqs "$D1" | sort | tr '\n' ' ')" = "1 2 "
tap_check "nothing is left to acknowledge" test ! -e "$D1/.pending"
tap_check "push queue bob: empty" test "$(queue_len)" = 0
tap_check "pushd.log: each message sent (after the restart) and deleted" \
    sh -c "grep -q 'sent $ID1 ' '$LOG' && grep -q 'sent $ID2 ' '$LOG' && grep -q 'deleted $ID1\$' '$LOG' && grep -q 'deleted $ID2\$' '$LOG'"
tap_check "pushd.log: no message deleted before it was sent" test -z "$(log_sent_before_deleted)"

# ---- 1b. the same in the middle of a sequence: the ack riding on it too -----
D2=$H_DIR/dev2
mkdir "$D2"
for s in 3 4 5; do hp_send "$B" "m$s" --add-header "X-Seq: $s" || tap_fail "message $s accepted"; done
hp_wait_stored 5 || { tap_fail "3 more messages stored"; tap_done; exit 1; }
# the device's steps one by one, each stored as drain stores it
out=$(hp_client "$B" phone get first --out "$D2/new" 2>/dev/null)
I3=$(field id "$out") I4=$(field next "$out")
mv "$D2/new" "$D2/$I3.eml" && printf %s "$I3" >"$D2/.pending"
crash_at after-send
out=$(hp_client "$B" phone get "$I4" --ack "$I3" --out "$D2/new" 2>/dev/null)
tap_check "get=<4>&ack=<3>: message 4 in full ($out)" test "$(field status "$out")" = 200 -a "$(field id "$out")" = "$I4"
mv "$D2/new" "$D2/$I4.eml" && printf %s "$I4" >"$D2/.pending"
tap_check "postlink-pushd killed itself after that response" wait_dead
hp_start_pushd || { tap_fail "postlink-pushd restarts"; tap_done; exit 1; }
j=$(queue_json)
tap_check "neither the ack of 3 nor the sending of 4 was recorded (3 sent, 4 and 5 waiting)" \
    jq_true '[.messages[].devices[0].state] == ["sent", "waiting", "waiting"]' "$j"
out=$(hp_client "$B" phone drain --dir "$D2" --retry-for 10 2>/dev/null | tail -n 1)
tap_diag "drain after the restart: $out"
tap_check "a full drain: 3 and 4 offered again (2 redeliveries for one kill), 5 new" \
    test "$(field redelivered "$out")" = 2 -a "$(field messages "$out")" = 1
tap_check "messages 3, 4, 5 in the device's directory, each once" \
    test "$(neml "$D2")" = 3 -a "$(seqs "$D2" | sort | tr '\n' ' ')" = "3 4 5 "
tap_check "push queue bob: empty" test "$(queue_len)" = 0

# ---- 1c. killed after the record committed, before it was logged ------------
D3=$H_DIR/dev3
mkdir "$D3"
for s in 6 7; do hp_send "$B" "m$s" --add-header "X-Seq: $s" || tap_fail "message $s accepted"; done
hp_wait_stored 7 || { tap_fail "2 more messages stored"; tap_done; exit 1; }
crash_at after-apply
out=$(hp_client "$B" phone drain --dir "$D3" --max 1 --retry-for 0 2>/dev/null | head -n 1)
I6=$(field id "$out")
tap_check "killed after recording that message 6 was sent" wait_dead
hp_start_pushd || { tap_fail "postlink-pushd restarts"; tap_done; exit 1; }
tap_check "message 6 is recorded as sent" \
    jq_true "[.messages[] | select(.id == \"$I6\") | .devices[0].state] == [\"sent\"]" "$(queue_json)"
out=$(hp_client "$B" phone drain --dir "$D3" --retry-for 10 2>/dev/null | tail -n 1)
tap_check "a full drain: its ack is taken, nothing offered twice ($out)" \
    test "$(field redelivered "$out")" = 0 -a "$(field messages "$out")" = 1
tap_check "messages 6, 7 in the device's directory, each once" \
    test "$(neml "$D3")" = 2 -a "$(seqs "$D3" | sort | tr '\n' ' ')" = "6 7 "
tap_check "push queue bob: empty" test "$(queue_len)" = 0
LOST_SENT_LOG=$(log_sent_before_deleted)
tap_check "pushd.log: the only message deleted without a 'sent' line is 6, killed right after it was recorded" \
    test "$LOST_SENT_LOG" = "$I6"

# ---- 1d. killed in LMTP before the commit -----------------------------------
D4=$H_DIR/dev4
mkdir "$D4"
crash_at before-commit
tap_check "message 8 accepted by Postfix" hp_send "$B" "m8" --add-header "X-Seq: 8"
tap_check "postlink-pushd killed itself before committing it" wait_dead 30
tap_check "Postfix keeps the message (deferred)" sh -c "postqueue -c '$H_DIR/postfix/etc' -p 2>/dev/null | grep -q '$B'"
hp_start_pushd || { tap_fail "postlink-pushd restarts"; tap_done; exit 1; }
tap_check "after the restart Postfix delivers it" wait_postfix_empty 30
tap_check "pushd stored 8 messages in all (message 8 once)" \
    sh -c "hp() { grep -c ': stored [0-9a-f]\{32\} ' '$LOG'; }; test \$(hp) = 8"
out=$(hp_client "$B" phone drain --dir "$D4" --retry-for 10 2>/dev/null | tail -n 1)
tap_check "the device gets message 8, once ($out)" \
    test "$(neml "$D4")" = 1 -a "$(seqs "$D4")" = 8 -a "$(field redelivered "$out")" = 0
tap_check "push queue bob: empty" test "$(queue_len)" = 0

# ---- 1e. killed in LMTP after the commit, before the 250 --------------------
# Postfix sees a lost connection and delivers again (a SIGKILL that lands
# during a delivery's commit fsync takes effect right after it, so under
# load this is the usual kill during the intake): the receipt of the first
# delivery makes the repeat a "250 already stored", nothing stored twice.
D5=$H_DIR/dev5
mkdir "$D5"
crash_at after-commit
tap_check "message 9 accepted by Postfix" hp_send "$B" "m9" --add-header "X-Seq: 9"
tap_check "postlink-pushd killed itself after committing it, before its 250" wait_dead 30
hp_start_pushd || { tap_fail "postlink-pushd restarts"; tap_done; exit 1; }
tap_check "Postfix delivers it again after the restart" wait_postfix_empty 30
tap_check "... and postlink-pushd recognised the repeat ('already stored as')" \
    grep -q "status=sent (250 2.0.0 <$B> already stored as" "$H_DIR/postfix/maillog"
out=$(hp_client "$B" phone drain --dir "$D5" --retry-for 10 2>/dev/null | tail -n 1)
c=$(seqs "$D5" | grep -c '^9$')
tap_check "the device gets message 9 once (got $c)" test "$c" = 1
tap_check "push queue bob: empty" test "$(queue_len)" = 0

# ---- 2. random kills under load ---------------------------------------------
D=$H_DIR/dev
mkdir "$D"
: >"$H_DIR/client.out"
printf 'From: sender@remote.invalid\r\nTo: %s\r\nSubject: load @@ID@@\r\nMessage-ID: <load.@@ID@@@remote.invalid>\r\nX-Seq: @@ID@@\r\n\r\nbody of @@ID@@\r\n' \
    "$B" >"$H_DIR/load.eml"
CLIENT_PID=
start_client() {
    h_spawn client "$H_DIR/client.out" "$HP_CLIENT" --url "$POSTLINK_PUSH_URL" \
        --token-file "$H_DIR/token-$B-phone" drain --dir "$D" --retry-for 30 --follow 5 --slow-ms 3
    CLIENT_PID=$H_LAST_PID
}
kill_client() {
    kill -KILL "$CLIENT_PID" 2>/dev/null
    wait "$CLIENT_PID" 2>/dev/null
}
start_client
"$abs_top_builddir/bench/pl-smtp-load" -s 2 -m "$N" -f sender@remote.invalid -t "$B" \
    -F "$H_DIR/load.eml" "127.0.0.1:$POSTLINK_SMTP_PORT" >"$H_DIR/load.out" 2>&1 &
LOAD_PID=$!
kills=0 ckills=0 intake=0 drain=0 t_end=$((SECONDS + 90))
while [ $kills -lt "$KILLS" ] && [ $SECONDS -lt $t_end ]; do
    # a random moment after the last restart: 20 to 220 ms while Postfix
    # hands mail over, 50 to 450 ms after
    if h__alive "$LOAD_PID"; then sleep "0.$(printf '%03d' $((20 + RANDOM % 200)))"
    else sleep "0.$(printf '%03d' $((50 + RANDOM % 400)))"; fi
    kill -KILL "$HP_PUSHD_PID" 2>/dev/null
    wait_dead || break
    kills=$((kills + 1))
    if h__alive "$LOAD_PID"; then intake=$((intake + 1))
    elif [ "$(neml "$D")" -lt "$N" ]; then drain=$((drain + 1)); fi
    if [ $((RANDOM % 3)) = 0 ] || ! h__alive "$CLIENT_PID"; then
        h__alive "$CLIENT_PID" && ckills=$((ckills + 1))
        kill_client
        start_client
    fi
    hp_start_pushd || break
done
tap_diag "postlink-pushd killed $kills times ($intake while Postfix took the mail in, $drain after it, while the device drained), the device $ckills times"
tap_check "postlink-pushd was killed $KILLS times and restarted" test $kills = "$KILLS"
wait "$LOAD_PID"; lrc=$?
tap_check "Postfix accepted all $N messages ($(cat "$H_DIR/load.out"))" \
    test $lrc = 0 -a "$(cat "$H_DIR/load.out")" = "sent $N failed 0"
tap_check "Postfix's queue empties (everything handed to pushd)" wait_postfix_empty 60
kill_client
out=$(timeout 120 "$HP_CLIENT" --url "$POSTLINK_PUSH_URL" --token-file "$H_DIR/token-$B-phone" \
    drain --dir "$D" --retry-for 30 2>>"$H_DIR/client.out" | tee -a "$H_DIR/client.out" | tail -n 1)
tap_check "a last drain runs to its end ($out)" grep -q '^requests=' <<<"$out"
got=$(seqs "$D" | sed 's/.*\.//' | sort -n)
distinct=$(uniq <<<"$got" | grep -c .)
doubled=$(uniq -d <<<"$got")
missing=$(comm -23 <(seq 0 $((N - 1)) | sort) <(uniq <<<"$got" | sort) | grep -c .)
tap_diag "the device holds $(neml "$D") files: $distinct distinct messages, $(grep -c . <<<"$doubled") of them twice, $missing missing"
tap_check "every message Postfix accepted is in the device's directory" test "$missing" = 0 -a "$distinct" = "$N"
# a message twice would be a second copy with an id of its own (the device
# keeps each id once): not even Postfix's repeat after a lost LMTP
# connection may cause one (its receipt recognises it)
repeats=$(grep -c "already stored as" "$H_DIR/postfix/maillog")
tap_diag "Postfix repeated $repeats delivery(ies) whose 250 a kill cut off; recognised"
tap_check "no message twice ($(grep -c . <<<"$doubled"))" test -z "$doubled"
tap_check "every file in the device's directory is one whole message (one X-Seq each)" \
    test "$(neml "$D")" = "$(grep -c . <<<"$got")"
r200=$(grep -c '^status=200 ' "$H_DIR/client.out")
rids=$(sed -n 's/^status=200 id=\([0-9a-f]*\) .*/\1/p' "$H_DIR/client.out" | sort -u | grep -c .)
redel=$((r200 - rids))
tap_diag "responses with a message: $r200 for $rids messages: $redel offered again"
tap_check "offered again: at most 2 per kill of pushd (the message in flight and the one whose ack rode on it) and 1 per kill of the device ($redel)" \
    test "$redel" -le $((2 * kills + ckills))
tap_check "push queue bob: empty" test "$(queue_len)" = 0
tap_check "Postfix's queue is empty" postfix_empty
nolog=$(comm -23 <(log_sent_before_deleted | sort) <(echo "$LOST_SENT_LOG"))
recv=$(sed -n 's/^status=200 id=\([0-9a-f]*\) .*/\1/p' "$H_DIR/client.out" | sort -u)
notrecv=$(comm -23 <(sort <<<"$nolog" | grep .) <(echo "$recv") | grep -c .)
tap_diag "deleted without a 'sent' line in pushd.log (killed between the record and its log line): $(grep -c . <<<"$nolog")"
tap_check "no message was acknowledged that the device had not been sent in full" test "$notrecv" = 0
tap_check "'sent' lines lost to a kill: at most one per kill" test "$(grep -c . <<<"$nolog")" -le "$kills"
tap_done
