#!/usr/bin/env bash
# t_milter_tag.sh -- the postlink-tag milter's decisions at the milter
# level, without Postfix or postlink-xmppd: miltertest(8) plays the MTA
# (tests/milter/tag.lua with tests/milter/mtlib.lua) against the real
# postlink-tag on a temp postlink.conf, tag keys file and store.  alice
# is linked (sharing on), dave linked with sharing off, carol not linked.
# It checks that alice's mail on her SASL session is tagged (Jabber-ID,
# X-Mail-Id, X-Postlink-Tag); that the same mail arriving for a local
# recipient, with the tag postlink-tag just made, is annotated with
# X-Messenger-Presence ("unknown": no postlink-xmppd) and X-Messenger-Chat,
# but not when replayed to someone else or with a tampered signature; that
# a stranger's forged fields (mixed case) are removed; and that mail of
# unlinked senders is left alone.
set -u
. "${abs_top_srcdir:-.}/tests/integration/tap.sh"
. "$abs_top_srcdir/tests/harness/harness.sh"
. "$abs_top_srcdir/tests/milter/mt.sh"
. "$abs_top_srcdir/tests/harness/xmpp.sh"

command -v miltertest >/dev/null || { tap_fail "miltertest installed (Debian package miltertest)"; tap_done; exit 1; }
h_init || exit 1

D=$POSTLINK_DOMAIN
# hx_setup writes postlink.conf, the tag keys (k1 signs) and the store.
# No Prosody and no postlink-xmppd: nothing answers on the lookup socket,
# so presence is "unknown" at once.
export POSTLINK_XMPP_DOMAIN=chat.$D POSTLINK_XMPP_PORT=$(h_free_port)
export HX_MUC_DOMAIN=conference.$POSTLINK_XMPP_DOMAIN
X=$POSTLINK_XMPP_DOMAIN
hx_setup >/dev/null &&
    "$POSTLINKCTL" messenger link "alice@$D" "alice@$X" >/dev/null &&
    "$POSTLINKCTL" messenger link "dave@$D" "dave@$X" >/dev/null &&
    "$POSTLINKCTL" messenger share "dave@$D" off >/dev/null
tap_check "store made; alice and dave linked with postlinkctl, dave not sharing" \
    jq_true "map({address, share}) | sort_by(.address) == [{address: \"alice@$D\", share: true}, {address: \"dave@$D\", share: false}]" \
    "$("$POSTLINKCTL" messenger list --json 2>/dev/null)"
hx_start_tag || { tap_fail "postlink-tag starts"; tap_done; exit 1; }
tap_ok "postlink-tag starts"

mt_run tag.lua -D sock="unix:$H_TAG/tag-milter.sock" -D domain="$D" -D xdomain="$X" -D xmpp_jid="$HX_JID"

tap_check "postlink-tag is still running after all of it" h__alive "$HX_TAG_PID"
tap_check "no sanitizer report in its log (a build with --enable-sanitizers)" \
    eval '! grep -qE "runtime error|Sanitizer" "$H_TAG"/tag.log'
tap_check "its log says why the replayed mail showed nothing" \
    grep -q "valid tag mail-id=[a-z2-7]* but no presence: replayed to someone who was not a recipient" "$H_TAG/tag.log"
[ "$TAP_FAILED" = 0 ] || { echo "# milter log:"; tail -n 40 "$H_TAG/tag.log" | sed 's/^/#   /'; }
tap_done
