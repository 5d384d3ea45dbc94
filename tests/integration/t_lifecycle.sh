#!/usr/bin/env bash
# t_lifecycle.sh -- the server skeleton under all five postlink processes
# (postlink-sync, postlink-syncd, postlink-policyd, postlink-tag,
# postlink-xmppd) against a private Postfix, Dovecot and Prosody:
#   - each runs as postlink_user, not root; -n checks the configuration;
#     a missing or broken file exits 78 naming file:line; postlink_user =
#     root is refused;
#   - SIGHUP re-reads postlink.conf: a changed parameter takes effect
#     without a restart, a broken file keeps the old settings (and the
#     process keeps running -- libmilter alone would stop on SIGHUP);
#   - SIGTERM of each daemon while mail flows: exit status 0, "stopping"
#     and "stopped" logged, no other postlink process runs recovery, and
#     every message Postfix accepted is delivered;
#   - SIGKILL of one: exactly one survivor recovers the store and says so.
set -u
H_USERS="alice bob" HX_USERS="alice bob postlink"
. "${abs_top_srcdir:-.}/tests/integration/tap.sh"
. "$abs_top_srcdir/tests/harness/harness.sh"
. "$abs_top_srcdir/tests/harness/sync.sh"
. "$abs_top_srcdir/tests/harness/xmpp.sh"

h_init || exit 1
HS_CONF_EXTRA="shutdown_timeout = 10s"
h_start_sink && h_start_dovecot && hx_start_prosody && hs_setup && hx_setup && h_start_postfix &&
    hs_start && hs_start_policyd && hx_start_xmppd && hx_start_tag ||
    { tap_fail "harness with all five postlink processes"; tap_done; exit 1; }
tap_ok "harness with all five postlink processes"

B=$abs_top_builddir
U=$POSTLINK_DEMO_USER PW=$POSTLINK_DEMO_PASS
LOGS="$H_SYNC/milter.log $H_SYNC/syncd.log $H_SYNC/policyd.log $H_TAG/tag.log $H_TAG/xmppd.log"
uid_of() { awk '/^Uid:/ { print $2 }' "/proc/$1/status"; }
PL_UID=$(id -u postlink)

# --- privileges ---------------------------------------------------------
for p in "sync:$HS_MILTER_PID" "syncd:$HS_SYNCD_PID" "policyd:$HS_POLICYD_PID" \
         "tag:$HX_TAG_PID" "xmppd:$HX_XMPPD_PID"; do
    tap_check "postlink-${p%%:*} runs as postlink_user (uid $PL_UID), not root" \
        test "$(uid_of "${p#*:}")" = "$PL_UID"
done
tap_check "the sync milter's socket is there for Postfix (group postfix, 0660)" \
    sh -c "stat -c '%G %a' '$H_SYNC/sync-milter.sock' | grep -qx 'postfix 660'"

# --- configuration checks -------------------------------------------------
out=$("$B/agents/sync/postlink-syncd" -n 2>&1); rc=$?
tap_check "-n with a good file: exit 0 and 'OK' ($rc)" sh -c "[ $rc = 0 ] && echo '$out' | grep -q OK"
"$B/agents/sync/postlink-syncd" -n -c "$H_DIR/nonexistent.conf" >/dev/null 2>"$H_DIR/n.err"; rc=$?
tap_check "-n with a missing file: exit 78 naming it ($rc)" \
    sh -c "[ $rc = 78 ] && grep -q 'nonexistent.conf' '$H_DIR/n.err'"
cp "$POSTLINK_CONF" "$H_DIR/broken.conf"; echo "pending_ttl = soon" >>"$H_DIR/broken.conf"
L=$(wc -l <"$H_DIR/broken.conf")
"$B/milters/tag/postlink-tag" -n -c "$H_DIR/broken.conf" >/dev/null 2>"$H_DIR/n.err"; rc=$?
tap_check "-n with a bad value: exit 78 naming broken.conf:$L ($rc)" \
    sh -c "[ $rc = 78 ] && grep -q 'broken.conf:$L' '$H_DIR/n.err'"
"$B/policy/postlink-policyd" -f -o postlink_user=root -o policy_socket=$H_DIR/p2.sock \
    >"$H_DIR/root.err" 2>&1; rc=$?
tap_check "postlink_user = root is refused (exit 77: $rc)" \
    sh -c "[ $rc = 77 ] && grep -q 'refusing to run as root' '$H_DIR/root.err'"

# --- SIGHUP ----------------------------------------------------------------
# control_max_targets: a control naming 3 targets passes with the default
# (50) and is refused after a reload that sets 2.
T1=$(hs_msgid t1) T2=$(hs_msgid t2) T3=$(hs_msgid t3)
control3_gets() {   # CODE: a control with 3 targets gets this reply at end of data
    hs_send "$POSTLINK_SUBMISSION_PORT" "$U" "$U" --auth-user "$U" --auth-password "$PW" \
        --header "Message-Id: $(hs_msgid c)" --add-header "X-Control: read" \
        --add-header "X-Control-Target: $T1 $T2 $T3" | grep -q "^ *<[-~*]* *$1 "
}
wait_log() {   # FILE PATTERN COUNT: until FILE has COUNT lines matching PATTERN (10 s)
    local end=$((SECONDS + 10))
    until [ "$(grep -c -- "$2" "$1" 2>/dev/null)" -ge "$3" ]; do
        [ $SECONDS -ge $end ] && return 1; sleep 0.05
    done
}
tap_check "before the reload a control with 3 targets is accepted" control3_gets 250
cp "$POSTLINK_CONF" "$H_DIR/good.conf"
echo "control_max_targets = 2" >>"$POSTLINK_CONF"
kill -HUP "$HS_MILTER_PID"
tap_check "SIGHUP: the sync milter logs the reload" wait_log "$H_SYNC/milter.log" 'reloaded .*: 1 parameter' 1
tap_check "SIGHUP: the sync milter is still running (libmilter alone stops on SIGHUP)" h__alive "$HS_MILTER_PID"
tap_check "after the reload the same control is refused (control_max_targets = 2)" control3_gets 550
echo "control_max_targets = lots" >>"$POSTLINK_CONF"
L=$(wc -l <"$POSTLINK_CONF")
kill -HUP "$HS_MILTER_PID"
wait_log "$H_SYNC/milter.log" 'reload failed' 1
tap_check "SIGHUP with a broken file: 'reload failed' and postlink.conf:$L logged" \
    grep -q "postlink.conf:$L" "$H_SYNC/milter.log"
tap_check "... the process keeps running" h__alive "$HS_MILTER_PID"
tap_check "... with the old settings: the 3-target control is still refused" control3_gets 550
cp "$H_DIR/good.conf" "$POSTLINK_CONF"
for p in "$HS_SYNCD_PID:$H_SYNC/syncd.log" "$HS_POLICYD_PID:$H_SYNC/policyd.log" \
         "$HX_TAG_PID:$H_TAG/tag.log" "$HX_XMPPD_PID:$H_TAG/xmppd.log" "$HS_MILTER_PID:$H_SYNC/milter.log"; do
    pid=${p%%:*} log=${p#*:}
    n=$(grep -c 'reloaded ' "$log")
    kill -HUP "$pid"
    wait_log "$log" 'reloaded ' $((n + 1))
    tap_check "SIGHUP: $(basename "$log" .log) reloaded and keeps running" \
        sh -c "[ $(grep -c 'reloaded ' "$log") -gt $n ] && kill -0 $pid"
done
tap_check "after the last reload the 3-target control is accepted again" control3_gets 250

# --- SIGTERM under load -----------------------------------------------------
# A background sender mails alice one message per connection and notes
# each 250; each daemon is stopped and started again while it runs.
"$POSTLINKCTL" device add "$U" alice-phone@devices.test >/dev/null
before=$(h_count_maildir_files alice)
: >"$H_DIR/accepted"
(
    for i in $(seq 1 40); do
        if swaks --server 127.0.0.1 --port "$POSTLINK_SMTP_PORT" --from friend@elsewhere.example \
            --to "$U" --header "Subject: load $i" --timeout 20 --suppress-data 2>&1 | grep -q '<[-~] *250 .*queued'; then
            echo "$i" >>"$H_DIR/accepted"
        fi
        sleep 0.1
    done
    echo done >"$H_DIR/sender-done"
) &
SENDER=$!
stop_one() {   # NAME PIDVAR LOG START-FUNCTION
    local name=$1 pid=${!2} log=$3 start=$4 rc
    wait_log "$H_DIR/accepted" . "$(( $(wc -l <"$H_DIR/accepted") + 1 ))" || true
    kill -TERM "$pid"
    wait "$pid"; rc=$?
    tap_check "SIGTERM: $name exits with status 0 ($rc)" test "$rc" = 0
    tap_check "SIGTERM: $name logged 'stopping (SIGTERM)' and 'stopped'" \
        sh -c "grep -q 'stopping (SIGTERM)' '$log' && grep -q ' stopped' '$log'"
    $start || tap_fail "$name starts again"
}
stop_one postlink-sync HS_MILTER_PID "$H_SYNC/milter.log" hs_start_milter
stop_one postlink-tag HX_TAG_PID "$H_TAG/tag.log" hx_start_tag
stop_one postlink-syncd HS_SYNCD_PID "$H_SYNC/syncd.log" hs_start_syncd
stop_one postlink-policyd HS_POLICYD_PID "$H_SYNC/policyd.log" hs_start_policyd
stop_one postlink-xmppd HX_XMPPD_PID "$H_TAG/xmppd.log" hx_start_xmppd
wait "$SENDER"
acc=$(wc -l <"$H_DIR/accepted")
tap_check "the sender got 250 for most of its 40 messages ($acc)" test "$acc" -ge 20
h_wait_maildir_files alice $((before + acc)) 30
tap_check "every accepted message reached alice's mailbox ($((before + acc)) expected, $(h_count_maildir_files alice) there)" \
    test "$(h_count_maildir_files alice)" -eq $((before + acc))
hs_wait_sink_grep 'Subject: load ' "$acc" 30
tap_check "... and each reached alice's device once ($(hs_sink_grep 'Subject: load ' | wc -l) of $acc)" \
    test "$(hs_sink_grep 'Subject: load ' | wc -l)" -eq "$acc"
tap_check "no postlink process ran recovery for a stopped one" \
    sh -c "! grep -l 'died while using the store\|recovering\|PANIC' $LOGS"
tap_check "no process logged that connections were cut" sh -c "! grep -l 'still busy' $LOGS"

# --- SIGKILL: exactly one recovery, announced once ---------------------------
# A process killed outright leaves the store to be recovered: one of the
# survivors does it and says so once; the others reopen quietly.
kill -KILL "$HS_SYNCD_PID"; wait "$HS_SYNCD_PID" 2>/dev/null
end=$((SECONDS + 20))
until grep -q 'died while using the store' $LOGS 2>/dev/null || [ $SECONDS -ge $end ]; do sleep 0.1; done
hs_start_syncd || tap_fail "postlink-syncd starts again"
M=$(hs_msgid after-kill)
hs_send "$POSTLINK_SMTP_PORT" friend@elsewhere.example "$U" --header "Message-Id: $M" >/dev/null
tap_check "mail flows again through both milters after the recovery" hs_wait_sink_grep "$M" 1 20
n_died=$(cat $LOGS | grep -c 'died while using the store')
tap_check "after SIGKILL of postlink-syncd exactly one survivor recovered the store and said so ($n_died)" \
    test "$n_died" = 1
tap_check "... and no process logged a PANIC flood (0 lines with PANIC)" \
    test "$(cat $LOGS | grep -c PANIC)" = 0
tap_done
