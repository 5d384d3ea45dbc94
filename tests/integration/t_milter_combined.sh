#!/usr/bin/env bash
# t_milter_combined.sh -- postlink-milter: both postlink filters (tag,
# then sync) in one process on one milter socket, as the only milter of a
# private Postfix (MX and submission listeners), with postlink-syncd:
#   - it starts, says which engine serves which filters, runs as
#     postlink_user;
#   - alice's mail on her SASL session is tagged (tag) and also reaches her
#     registered device (sync), both filters' changes made on one
#     connection;
#   - a stranger's forged X-Messenger-Presence and X-Postlink-State are
#     removed (each filter strips its own fields);
#   - a control from alice's phone is routed to postlink-syncd, applied,
#     and its state rides on the next copy;
#   - SIGTERM: exit 0, "stopped".
# POSTLINK_TEST_MILTER_ENGINE=libmilter runs the same on libmilter
# (t_milter_combined_libmilter.sh).
set -u
H_USERS="alice bob" HX_USERS="alice bob postlink"
. "${abs_top_srcdir:-.}/tests/integration/tap.sh"
. "$abs_top_srcdir/tests/harness/harness.sh"
. "$abs_top_srcdir/tests/harness/sync.sh"
. "$abs_top_srcdir/tests/harness/xmpp.sh"

h_init || exit 1
ENGINE=${POSTLINK_TEST_MILTER_ENGINE:-native}
export POSTLINK_XMPP_DOMAIN=chat.$POSTLINK_DOMAIN POSTLINK_XMPP_PORT=$(h_free_port)
export HX_MUC_DOMAIN=conference.$POSTLINK_XMPP_DOMAIN
SOCK=$H_DIR/postlink/combined.sock      # (the harness makes $H_DIR/postlink 0711)
HS_CONF_EXTRA="milter_socket = unix:$SOCK
milter_filters = tag, sync"
h_start_sink && h_start_dovecot && hs_setup && hx_setup || { tap_fail "harness set up"; tap_done; exit 1; }
# one milter for Postfix instead of the two sockets the harness wired
H_POSTFIX_MAIN_EXTRA=${H_POSTFIX_MAIN_EXTRA//"smtpd_milters = unix:$H_TAG/tag-milter.sock unix:$H_SYNC/sync-milter.sock"/"smtpd_milters = unix:$SOCK"}
h_start_postfix && hs_start_syncd || { tap_fail "Postfix and postlink-syncd start"; tap_done; exit 1; }
h_spawn combined "$H_DIR/combined.log" "$abs_top_builddir/milters/combined/postlink-milter" -f
PID=$H_LAST_PID
hs__wait_socket "$SOCK" "$PID"
tap_check "postlink-milter starts: $ENGINE engine serving postlink-tag, postlink-sync on one socket" \
    hs_wait_log "$H_DIR/combined.log" "milter engine $ENGINE.* serving postlink-tag, postlink-sync on unix:$SOCK"
tap_check "Postfix has one milter: postlink-milter's socket" \
    sh -c "postconf -c '$H_DIR/postfix/etc' -h smtpd_milters | grep -qx 'unix:$SOCK'"
tap_check "it runs as postlink_user" \
    test "$(awk '/^Uid:/ { print $2 }' "/proc/$PID/status")" = "$(id -u postlink)"

D=$POSTLINK_DOMAIN U=$POSTLINK_DEMO_USER PW=$POSTLINK_DEMO_PASS
SUB=$POSTLINK_SUBMISSION_PORT MX=$POSTLINK_SMTP_PORT
PHONE=alice-phone@devices.test
"$POSTLINKCTL" device add "$U" "$PHONE" >/dev/null
"$POSTLINKCTL" messenger link "$U" "alice@$POSTLINK_XMPP_DOMAIN" >/dev/null
hdr() { grep -i "^$2:" "$1" | head -1 | sed "s/^[^:]*: *//" | tr -d '\r'; }

# --- alice's own mail: tagged, and copied to her device -------------------
M1=$(hs_msgid m1)
out=$(hs_send "$SUB" "$U" "$U" --auth-user "$U" --auth-password "$PW" \
    --header "Message-Id: $M1" --header "Subject: note to self")
tap_check "alice's mail to herself on submission: accepted" grep -q '<-  250 .*queued' <<<"$out"
hs_wait_sink_grep "$M1" 1
f=$(hs_sink_grep "$M1" | head -1)
tap_check "the copy reaches her device (sync added the recipient)" \
    grep -q "^X-Envelope-To: <$PHONE>" "$f"
tap_check "and it is tagged: X-Mail-Id and X-Postlink-Tag (tag)" \
    sh -c "grep -qi '^X-Mail-Id: ' '$f' && grep -qi '^X-Postlink-Tag: ' '$f'"

# --- a stranger's forged fields are removed --------------------------------
M2=$(hs_msgid m2)
hs_send "$MX" stranger@elsewhere.example "$U" --header "Message-Id: $M2" \
    --add-header "X-Messenger-Presence: online" --add-header "X-Postlink-State: read" >/dev/null
hs_wait_sink_grep "$M2" 1
f=$(hs_sink_grep "$M2" | head -1)
tap_check "a stranger's mail still reaches alice's device" test -n "$f"
tap_check "with neither the forged X-Messenger-Presence: online nor X-Postlink-State" \
    sh -c "! grep -qi '^X-Messenger-Presence: online' '$f' && ! grep -qi '^X-Postlink-State:' '$f'"
tap_check "both filters logged what they removed" \
    sh -c "grep -q 'removed 1 X-Messenger-Presence' '$H_DIR/combined.log' &&
           grep -q 'removed 1 postlink sync header' '$H_DIR/combined.log'"

# --- a control from the phone is routed to postlink-syncd -------------------
C1=$(hs_msgid c1)
out=$(hs_send "$SUB" "$PHONE" "$U" --auth-user "$U" --auth-password "$PW" \
    --header "Message-Id: $C1" --add-header "X-Control: read" --add-header "X-Control-Target: $M2")
tap_check "a control from alice's phone: accepted" grep -q '<-  250 .*queued' <<<"$out"
tap_check "it goes to postlink-syncd" hs_wait_log "$H_DIR/combined.log" "control $C1 read 1 target(s).*to postlink-syncd"
state_flagged() {
    local end=$((SECONDS + 15))
    until "$POSTLINKCTL" state show "$U" "$M2" --json 2>/dev/null | grep -q "\"read\""; do
        [ $SECONDS -ge $end ] && return 1; sleep 0.1
    done
}
tap_check "and is applied: the store says $M2 is read" state_flagged

# --- stop ---------------------------------------------------------------------
kill -TERM "$PID"
wait "$PID" 2>/dev/null; rc=$?
tap_check "SIGTERM: exit 0 ($rc)" test "$rc" = 0
tap_check "and 'stopped' logged" grep -q 'postlink-milter stopped' "$H_DIR/combined.log"
tap_done
