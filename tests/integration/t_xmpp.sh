#!/usr/bin/env bash
# t_xmpp.sh -- capability 4: postlink-xmppd against a real Prosody.  Linking
# an account makes postlink-xmppd ask it to share presence (pending until
# the account approves, as RFC 6121 says); the presence it then sees is what
# the milter's lookups answer (online, away, offline), unknown for accounts
# it does not watch, after an unlink, and while the XMPP server is down; it
# reconnects when the server is back; lookups return within their budget
# when postlink-xmppd is dead.
set -u
. "${abs_top_srcdir:-.}/tests/integration/tap.sh"
. "$abs_top_srcdir/tests/harness/harness.sh"
. "$abs_top_srcdir/tests/harness/xmpp.sh"

h_init || exit 1
HX_CONF_EXTRA="xmpp_ping_interval = 2s"
hx_start_prosody && hx_setup && hx_start_xmppd || {
    tap_fail "Prosody and postlink-xmppd start"; tap_done; exit 1; }
tap_ok "Prosody and postlink-xmppd start; postlink-xmppd logs in as $HX_JID"

A=alice@$POSTLINK_DOMAIN C=carol@$POSTLINK_DOMAIN
AJ=alice@$POSTLINK_XMPP_DOMAIN CJ=carol@$POSTLINK_XMPP_DOMAIN
links() { "$POSTLINKCTL" messenger list --json 2>/dev/null; }
link_is() {                 # link_is ADDR JQ-EXPR: wait up to 10 s
    local end=$((SECONDS + 10))
    until jq_true "[.[] | select(.address == \"$1\")][0] | $2" "$(links)"; do
        [ $SECONDS -ge $end ] && return 1; sleep 0.1; done
}
presence_is() {             # presence_is JID WORD: wait up to 10 s
    local end=$((SECONDS + 10))
    until [ "$(hx_presence "$1")" = "$2" ]; do [ $SECONDS -ge $end ] && return 1; sleep 0.1; done
}

# --- configuration and input checks -------------------------------------------
out=$("$abs_top_builddir/agents/xmpp/postlink-xmppd" -f -o xmpp_jid= 2>&1); rc=$?
tap_check "postlink-xmppd without xmpp_jid exits 78 and says so" \
    test "$rc" = 78 -a -n "$(grep 'xmpp_jid.*not set' <<<"$out")"
out=$("$POSTLINKCTL" messenger link "$A" 'alice@chat example/phone' 2>&1); rc=$?
tap_check "messenger link refuses a malformed JID (exit 64, says why)" \
    test "$rc" = 64 -a -n "$(grep 'XMPP-JID' <<<"$out")"
out=$("$POSTLINKCTL" messenger link someone@elsewhere.example "x@$POSTLINK_XMPP_DOMAIN" 2>&1); rc=$?
tap_check "messenger link refuses an address outside enabled_domains (exit 1, says why)" \
    test "$rc" = 1 -a -n "$(grep 'not in enabled_domains' <<<"$out")"

# --- linking: subscription requested, pending until approved -------------------
hx_client alice -a
"$POSTLINKCTL" messenger link "$A" "$AJ" >/dev/null
tap_check "linking alice makes postlink-xmppd ask her account for presence" \
    hx_wait_file "$H_DIR/xmpp-alice.log" "^SUBSCRIBE $HX_JID"
tap_check "once she approves, messenger list shows the subscription" link_is "$A" '.subscription == "subscribed"'
"$POSTLINKCTL" messenger link "$C" "$CJ" >/dev/null
tap_check "carol (not logged in to approve) stays pending in messenger list" link_is "$C" '.subscription == "pending"'
tap_check "messenger list --json carries jid, share and presence" \
    link_is "$A" ".jid == \"$AJ\" and .share == true and .presence == \"online\""
# markers: a roster pass that asks bob (linked now), then later ones that
# ask dave and erin (each linked once the one before was asked; one thread
# runs the passes, so the pass that asked dave was over, with everything
# it sent, when erin was asked); then alice's and bob's own markers, which
# reach them after anything those passes sent them
hx_client bob
"$POSTLINKCTL" messenger link "bob@$POSTLINK_DOMAIN" "bob@$POSTLINK_XMPP_DOMAIN" >/dev/null
hx_wait_file "$H_DIR/xmpp-bob.log" "^SUBSCRIBE $HX_JID" 1
for u in dave erin; do
    "$POSTLINKCTL" messenger link "$u@$POSTLINK_DOMAIN" "$u@$POSTLINK_XMPP_DOMAIN" >/dev/null
    hx_wait_file "$H_TAG/xmppd.log" "asking $u@$POSTLINK_XMPP_DOMAIN to share presence" 1
done
hx_client_sync alice
hx_client_sync bob
tap_check "postlink-xmppd asked alice once, not again on every pass (1 request after later passes)" \
    eval 'test "$(grep -c "^SUBSCRIBE $HX_JID" "$H_DIR/xmpp-alice.log")" = 1 &&
          test "$(grep -c "asking $AJ to share" "$H_TAG/xmppd.log")" = 1'
tap_check "and bob, who has not approved, once too (pending is not asked again)" \
    eval 'test "$(grep -c "^SUBSCRIBE $HX_JID" "$H_DIR/xmpp-bob.log")" = 1 &&
          test "$(grep -c "asking bob@$POSTLINK_XMPP_DOMAIN to share" "$H_TAG/xmppd.log")" = 1'

# --- presence as the milter sees it ------------------------------------------------
tap_check "alice's chat program is online: the lookup says online" presence_is "$AJ" online
hx_client_stop alice
tap_check "she goes offline: offline" presence_is "$AJ" offline
hx_client alice -w away
tap_check "she comes back away: away" presence_is "$AJ" away
tap_check "carol, pending, is unknown" presence_is "$CJ" unknown
tap_check "an account nobody linked is unknown" presence_is "mallory@$POSTLINK_XMPP_DOMAIN" unknown
out=$("$abs_top_builddir/tests/tools/pl-presence" "$HX_LOOKUP" 'not a jid' 500 2>/dev/null)
tap_check "a malformed JID gets no answer but an error (the milter then says unknown)" \
    test "$out" = "unknown (unexpected answer)"

# --- XMPP server down, up again ----------------------------------------------------
hx_stop_prosody
tap_check "with the XMPP server down every lookup is unknown" presence_is "$AJ" unknown
tap_check "postlink-xmppd notices and plans to reconnect" hx_wait_file "$H_TAG/xmppd.log" 'reconnecting in'
hx_restart_prosody
tap_check "it logs in again when the server is back" hx_wait_file "$H_TAG/xmppd.log" 'logged in as' 2 20
hx_client alice
tap_check "and sees alice online again" presence_is "$AJ" online
kill -STOP "$HX_PROSODY_PID"
tap_check "a server that stops answering (SIGSTOP) is noticed by the 2 s ping: unknown" presence_is "$AJ" unknown
tap_check "postlink-xmppd says why" hx_wait_file "$H_TAG/xmppd.log" 'did not answer a ping'
kill -CONT "$HX_PROSODY_PID"
tap_check "and logs in again when it answers" hx_wait_file "$H_TAG/xmppd.log" 'logged in as' 3 30
hx_client_stop alice; hx_client alice
tap_check "alice online once more" presence_is "$AJ" online

# --- unlink ---------------------------------------------------------------------------
"$POSTLINKCTL" messenger unlink "$A" >/dev/null
tap_check "after unlink the lookup is unknown" presence_is "$AJ" unknown
tap_check "and postlink-xmppd dropped her from its roster" \
    hx_wait_file "$H_TAG/xmppd.log" "$AJ is no longer linked"
out=$("$POSTLINKCTL" messenger list); rc=$?
tap_check "messenger list (exit 0) no longer shows her" test "$rc" = 0 -a -z "$(grep "^$A " <<<"$out")"

# --- postlink-xmppd dead --------------------------------------------------------------
{ kill -KILL "$HX_XMPPD_PID"; wait "$HX_XMPPD_PID"; } 2>/dev/null
out=$("$abs_top_builddir/tests/tools/pl-presence" "$HX_LOOKUP" "$CJ" 200 2>/dev/null); rc=$?
tap_check "with postlink-xmppd killed a lookup returns at once with an error (unknown)" \
    test "$rc" = 2 -a -n "$(grep '^unknown' <<<"$out")"

h_stop_all
tap_done
