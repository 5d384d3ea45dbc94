#!/usr/bin/env bash
# t_milter_sync.sh -- the postlink-sync milter's decisions at the milter
# level, without Postfix: miltertest(8) plays the MTA (tests/milter/
# sync.lua with tests/milter/mtlib.lua) against the real postlink-sync on
# a temp postlink.conf and store, with postlink-syncd and postlink-policyd
# beside it.  Alice has two registered devices.  It checks that her
# control from her SASL session, a sync peer's address or a sync peer's
# certificate (the record postlink-policyd makes, used once) is routed to
# postlink-syncd (recipient replaced by the route address whose token is
# in the store); that malformed controls and controls without Message-ID
# get 550 5.6.0; that strangers' controls and forged sync headers (any
# letter case) are removed; that ordinary mail is also addressed to her
# devices; and that a control postlink-syncd holds for a message not yet
# seen is released by it (X-Postlink-State on the target).
set -u
. "${abs_top_srcdir:-.}/tests/integration/tap.sh"
. "$abs_top_srcdir/tests/harness/harness.sh"
. "$abs_top_srcdir/tests/milter/mt.sh"
. "$abs_top_srcdir/tests/harness/sync.sh"

command -v miltertest >/dev/null || { tap_fail "miltertest installed (Debian package miltertest)"; tap_done; exit 1; }
DB_DUMP=$(command -v db5.3_dump || command -v db_dump) ||
    { tap_fail "db5.3_dump installed (Debian package db5.3-util)"; tap_done; exit 1; }
h_init || exit 1

D=$POSTLINK_DOMAIN
ALICE=alice@$D PHONE=alice-phone@devices.test LAPTOP=alice-laptop@devices.test
# A sync peer by client address, and one by TLS client certificate.
FP=$(openssl rand -hex 32 | tr a-f A-F | sed 's/../&:/g; s/:$//')
HS_PEER_ADDR="127.0.0.2, $FP"
# hs_setup writes postlink.conf and makes the store; its Postfix wiring
# stays unused: no Postfix here.
hs_setup >/dev/null && "$POSTLINKCTL" device add "$ALICE" "$PHONE" >/dev/null &&
    "$POSTLINKCTL" device add "$ALICE" "$LAPTOP" >/dev/null
tap_check "store made and alice's two devices registered with postlinkctl" \
    jq_true 'length == 2' "$("$POSTLINKCTL" device list "$ALICE" --json 2>/dev/null)"
hs_start_milter && hs_start_syncd && hs_start_policyd ||
    { tap_fail "postlink-sync, postlink-syncd and postlink-policyd start"; tail -n 5 "$H_SYNC"/*.log | sed 's/^/# /'; tap_done; exit 1; }
tap_ok "postlink-sync, postlink-syncd and postlink-policyd start"

# policy QUEUE-ID FINGERPRINT: the request Postfix's smtpd_data_restrictions
# make at end of data for a client (127.0.0.9, port 12345: the port
# miltertest reports) that presented a TLS client certificate; prints
# postlink-policyd's answer.
policy() {
    python3 - "$H_SYNC/policy.sock" "$1" "$2" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sys.argv[1])
s.sendall(("request=smtpd_access_policy\nprotocol_state=END-OF-MESSAGE\nqueue_id=%s\n"
           "client_address=127.0.0.9\nclient_port=12345\nccert_fingerprint=%s\n\n"
           % (sys.argv[2], sys.argv[3])).encode())
out = b""
while not out.endswith(b"\n\n"):
    b = s.recv(4096)
    if not b:
        break
    out += b
print(out.decode().strip())
PY
}
CERT_QID=$(printf 'C%08X' $RANDOM$RANDOM)
tap_check "postlink-policyd answers DUNNO to a sync peer's certificate (and records it)" \
    test "$(policy "$CERT_QID" "$(tr A-F a-f <<<"$FP")")" = action=DUNNO

mt_run sync.lua -D sock="unix:$H_SYNC/sync-milter.sock" -D dbhome="$POSTLINK_DB_HOME" -D domain="$D" \
    -D phone="$PHONE" -D laptop="$LAPTOP" -D peer=127.0.0.2 -D db_dump="$DB_DUMP" \
    -D postlinkctl="$POSTLINKCTL" -D swaks="$(command -v swaks)" -D lmtp="$H_SYNC/syncd.sock" \
    -D cert_qid="$CERT_QID" -D cert_client=127.0.0.9

tap_check "postlink-sync is still running after all of it" h__alive "$HS_MILTER_PID"
tap_check "no sanitizer report in the daemons' logs (a build with --enable-sanitizers)" \
    eval '! grep -qE "runtime error|Sanitizer" "$H_SYNC"/milter.log "$H_SYNC"/syncd.log "$H_SYNC"/policyd.log'
tap_check "its log names the routed control" \
    grep -q "postlink-sync: control <ctl\.[0-9.]*@devices.test> read 1 target(s) from=<$PHONE> user=$ALICE: to postlink-syncd" "$H_SYNC/milter.log"
tap_check "and the headers stripped from the stranger's control" \
    grep -q "removed 3 postlink sync header(s) from=<mallory@elsewhere.test> auth=-: session is not authenticated" "$H_SYNC/milter.log"
[ "$TAP_FAILED" = 0 ] || { echo "# milter log:"; tail -n 40 "$H_SYNC/milter.log" | sed 's/^/#   /'; }
tap_done
