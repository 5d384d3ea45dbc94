#!/usr/bin/env bash
# t_stuck_daemon.sh -- a daemon that has served many connections still
# catches a stuck store operation: postlink-syncd serves 320 LMTP
# connections, each in a thread of its own that looks a route token up in
# the store; then one more connection's thread blocks inside a store call
# (the POSTLINK_TEST_STUCK_FILE hook stands for a mutex left by a process
# that died inside Berkeley DB).  The guard must notice within its bound
# and exit 75, so that the supervisor starts a fresh process.
set -u
. "${abs_top_srcdir:-.}/tests/integration/tap.sh"
. "$abs_top_srcdir/tests/harness/harness.sh"
. "$abs_top_srcdir/tests/harness/sync.sh"

h_init || exit 1
mkdir -m 0700 "$H_DIR/hook" && chown postlink "$H_DIR/hook"
export POSTLINK_TEST_STUCK_FILE=$H_DIR/hook/stuck
hs_setup >/dev/null && hs_start_syncd || { tap_fail "postlink-syncd starts"; tap_done; exit 1; }
tap_ok "postlink-syncd starts"

# lmtp N: N connections, one after another (each: LHLO, MAIL, RCPT of an
# unknown route token, QUIT); prints how many got syncd's 550 for the RCPT
lmtp() {
    python3 - "$H_SYNC/syncd.sock" "$1" <<'PY'
import socket, sys
path, n, good = sys.argv[1], int(sys.argv[2]), 0
for i in range(n):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    try:
        s.connect(path)
        f = s.makefile("rwb")
        f.readline()
        f.write(b"LHLO test\r\n"); f.flush()
        while True:
            l = f.readline()
            if not l or l[3:4] != b"-": break
        f.write(b"MAIL FROM:<>\r\n"); f.flush(); f.readline()
        f.write(("RCPT TO:<alice=x+%032d@sync.postlink.invalid>\r\n" % i).encode()); f.flush()
        if f.readline().startswith(b"550 5.7.1"): good += 1
        f.write(b"QUIT\r\n"); f.flush(); f.readline()
    except OSError:
        pass
    s.close()
print(good)
PY
}
n=$(lmtp 320)
tap_check "postlink-syncd served 320 connections, each looking its token up in the store ($n)" test "$n" = 320
tap_check "... and it is still running" h__alive "$HS_SYNCD_PID"
touch "$POSTLINK_TEST_STUCK_FILE"
lmtp 1 >/dev/null &
end=$((SECONDS + 40))
while h__alive "$HS_SYNCD_PID" && [ $SECONDS -lt $end ]; do sleep 0.1; done
wait "$HS_SYNCD_PID"; rc=$?
tap_check "the 321st connection's thread got stuck in the store (the hook fired)" \
    grep -q 'TEST HOOK POSTLINK_TEST_STUCK_FILE' "$H_SYNC/syncd.log"
tap_check "the guard caught it and postlink-syncd exited 75 ($rc)" test "$rc" = 75
tap_check "... saying why" grep -q 'blocked in Berkeley DB past its deadline' "$H_SYNC/syncd.log"
wait
tap_done
