#!/usr/bin/env bash
# t_sync_certpeer.sh -- capability 1: a sync peer known by its TLS client
# certificate.  Postfix asks for client certificates on port 25 and calls
# postlink-policyd from smtpd_data_restrictions; sync_peers lists one
# certificate fingerprint and one public-key fingerprint.  A control sent
# with a listed certificate (no SASL, from an address that is not a peer)
# is applied and fanned out; with an unlisted certificate or without TLS
# it is stripped and changes nothing; with postlink-policyd down Postfix
# tempfails and the resent control is applied once it is back.
set -u
. "${abs_top_srcdir:-.}/tests/integration/tap.sh"
. "$abs_top_srcdir/tests/harness/harness.sh"
. "$abs_top_srcdir/tests/harness/sync.sh"

h_init || exit 1
TLS=$H_DIR/tls
h_make_certs "$TLS" peer keypeer stranger || { tap_fail "test certificates"; tap_done; exit 1; }
FP=$(h_cert_fingerprint "$TLS/peer.pem")
# the public-key fingerprint written the other way admins may copy it:
# lower case, no colons
PKFP=$(h_cert_fingerprint "$TLS/keypeer.pem" pubkey | tr -d : | tr A-F a-f)
HS_PEER_ADDR="127.0.0.2, $FP, $PKFP"
H_SMTP_OPTS="-o smtpd_tls_security_level=may -o smtpd_tls_cert_file=$TLS/server.pem
  -o smtpd_tls_key_file=$TLS/server.key -o smtpd_tls_ask_ccert=yes
  -o smtpd_tls_fingerprint_digest=sha256
  -o smtpd_data_restrictions=check_policy_service,unix:$H_DIR/postlink/policy.sock"
h_start_sink && h_start_dovecot && hs_setup && h_start_postfix && hs_start && hs_start_policyd || {
    tap_fail "harness with postlink-sync, postlink-syncd and postlink-policyd starts"; tap_done; exit 1; }
tap_ok "harness with postlink-sync, postlink-syncd and postlink-policyd starts"

U=$POSTLINK_DEMO_USER
PHONE=alice-phone@devices.test DESK=alice-desk@devices.test PAGER=alice-pager@pager.test
for d in $PHONE $DESK $PAGER; do "$POSTLINKCTL" device add "$U" "$d" >/dev/null; done
MX=$POSTLINK_SMTP_PORT

state_json() { "$POSTLINKCTL" state show "$U" "$1" --json 2>/dev/null; }
state_is() {
    local end=$((SECONDS + 15))
    until jq_true "$2" "$(state_json "$1")"; do [ $SECONDS -ge $end ] && return 1; sleep 0.1; done
}
sink_rcpts() { hs_sink_grep "$1" | xargs -r grep -h '^X-Envelope-To:' | sed 's/^X-Envelope-To: *//; s/[<>\r]//g' | sort | tr '\n' ' '; }
mailbox_file() { grep -ls -- "$1" "$(h__maildir alice)"/new/* | head -1; }
no_sync_headers() { test -f "$1" && ! grep -qiE '^(X-Control|X-Control-Target|X-Postlink-Forwarded):' "$1"; }
# ctl_from_peer CERT WORD MSGID TARGET [swaks options]: a control that the
# upper server relays for alice's pager, over TLS with CERT ("" = no TLS)
ctl_from_peer() {
    local cert=$1 word=$2 id=$3 target=$4 tls=()
    shift 4
    [ -n "$cert" ] && tls=(--tls --tls-cert "$TLS/$cert.pem" --tls-key "$TLS/$cert.key")
    hs_send "$MX" "$PAGER" "$U" "${tls[@]}" --header "Message-Id: $id" \
        --add-header "X-Control: $word" --add-header "X-Control-Target: $target" \
        --add-header "X-Postlink-Forwarded: by upper.example; user=alice@upper.example" "$@"
}

# --- configuration ----------------------------------------------------------
out=$("$abs_top_builddir/policy/postlink-policyd" -f -o "sync_peers=127.0.0.2, AB:CD:EF" 2>&1); rc=$?
tap_check "postlink-policyd refuses a malformed fingerprint in sync_peers (exit 78, names it)" \
    test "$rc" = 78 -a -n "$(grep 'AB:CD:EF' <<<"$out")"
out=$("$POSTLINKCTL" -o "sync_peers=127.0.0.2, AB:CD:EF" check-config 2>&1); rc=$?
tap_check "postlinkctl check-config rejects it too, explaining what sync_peers takes" \
    test "$rc" != 0 -a -n "$(grep "AB:CD:EF.*certificate fingerprint" <<<"$out")"
M1=$(hs_msgid t1) M2=$(hs_msgid t2)
for m in "$M1" "$M2"; do hs_send "$MX" friend@elsewhere.example "$U" --header "Message-Id: $m" >/dev/null; done
h_wait_maildir_files alice 2
tap_check "setup: two target messages arrived with no state" jq_true '.[0].states == []' "$(state_json "$M1")"

# --- a listed certificate ---------------------------------------------------
C1=$(hs_msgid c1)
out=$(ctl_from_peer peer read "$C1" "$M1")
tap_check "a control over TLS with the peer's certificate is accepted (250)" grep -q '<~ *250 .*queued' <<<"$out"
tap_check "and applied, though the client 127.0.0.1 is no peer and did not authenticate" \
    state_is "$M1" '.[0].states == ["read"]'
hs_wait_sink_grep "Message-I[Dd]: $C1" 2
tap_check "and fanned out to alice's other devices" test "$(sink_rcpts "Message-I[Dd]: $C1")" = "$DESK $PHONE "
tap_check "postlink-policyd logged the peer by its certificate fingerprint" \
    grep -q "is a sync peer by certificate fingerprint $FP" "$H_SYNC/policyd.log"
tap_check "and the milter took the record for that message" \
    grep -q "is a sync peer by certificate $FP" "$H_SYNC/milter.log"

C2=$(hs_msgid c2)
ctl_from_peer keypeer saved "$C2" "$M1" >/dev/null
tap_check "a certificate listed by its public-key fingerprint (lower case, no colons) is a peer too" \
    state_is "$M1" '.[0].states == ["read","saved"]'

# --- certificates and sessions that are not peers ---------------------------
C3=$(hs_msgid c3)
n=$(h_count_maildir_files alice)
ctl_from_peer stranger deleted "$C3" "$M2" >/dev/null
h_wait_maildir_files alice $((n + 1))
tap_check "a control with an unlisted certificate is delivered as ordinary mail, headers stripped" \
    no_sync_headers "$(mailbox_file "$C3")"
C4=$(hs_msgid c4)
ctl_from_peer "" deleted "$C4" "$M2" >/dev/null
h_wait_maildir_files alice $((n + 2))
tap_check "so is the same control without TLS" no_sync_headers "$(mailbox_file "$C4")"
tap_check "neither changed the state" jq_true '.[0].states == []' "$(state_json "$M2")"
tap_check "nor was fanned out" test -z "$(sink_rcpts "X-Control-Target: $M2")"

# --- postlink-policyd down: Postfix tempfails, nothing is lost --------------
hs_kill "$HS_POLICYD_PID"
C5=$(hs_msgid c5)
out=$(ctl_from_peer peer replied "$C5" "$M2")
tap_check "with postlink-policyd down the peer's control gets a 4xx at DATA" grep -qE '<~\* *4[0-9][0-9] ' <<<"$out"
tap_check "and nothing changed" jq_true '.[0].states == []' "$(state_json "$M2")"
hs_start_policyd
out=$(ctl_from_peer peer replied "$C5" "$M2")
tap_check "after the restart the resent control is accepted" grep -q '<~ *250 .*queued' <<<"$out"
tap_check "and applied" state_is "$M2" '.[0].states == ["replied"]'
O1=$(hs_msgid ordinary)
n=$(h_count_maildir_files alice)
hs_send "$MX" friend@upper.example "$U" --tls --tls-cert "$TLS/peer.pem" --tls-key "$TLS/peer.key" \
    --header "Message-Id: $O1" --add-header "X-Postlink-State: deleted" >/dev/null
h_wait_maildir_files alice $((n + 1))
tap_check "the peer's ordinary mail is delivered with its sync headers stripped" \
    sh -c "f=\$(grep -ls -- '$O1' '$(h__maildir alice)'/new/* | head -1); test -n \"\$f\" && ! grep -qi '^X-Postlink-State' \"\$f\""
tap_check "every record postlink-policyd made was taken by the milter (controls and ordinary mail)" \
    jq_true '.tables.peerq == 0' "$("$POSTLINKCTL" status --json 2>/dev/null)"

h_stop_all
tap_done
