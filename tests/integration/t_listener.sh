#!/usr/bin/env bash
# t_listener.sh -- the server skeleton's listener when the process runs
# out of file descriptors: postlink-policyd under a limit of 64
# descriptors gets 60 connections held open at once.  It must say once
# that it backs off, must not spin on accept() meanwhile (CPU time over
# 3 s stays small), must keep serving the connections it has, and must
# serve new ones once the others are gone.
set -u
. "${abs_top_srcdir:-.}/tests/integration/tap.sh"
. "$abs_top_srcdir/tests/harness/harness.sh"
. "$abs_top_srcdir/tests/harness/sync.sh"

h_init || exit 1
hs_setup >/dev/null || { tap_fail "store made"; tap_done; exit 1; }
SOCK=$H_SYNC/policy.sock
h_spawn policyd "$H_SYNC/policyd.log" prlimit --nofile=64:64 "$abs_top_builddir/policy/postlink-policyd" -f
PID=$H_LAST_PID
hs__wait_socket "$SOCK" "$PID" || { tap_fail "postlink-policyd starts"; tap_done; exit 1; }
tap_ok "postlink-policyd starts with 64 file descriptors"

# client: hold N connections open for S seconds, then ask one question on
# the first and print its answer; or with N=1 and S=0 just ask.
client() {
    python3 - "$SOCK" "$1" "$2" "$H_DIR/held" <<'PY'
import socket, sys, time
path, n, hold, marker = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
req = (b"request=smtpd_access_policy\nprotocol_state=DATA\nprotocol_name=ESMTP\n"
       b"client_address=127.0.0.1\nqueue_id=ABC123\nsender=a@example.com\n\n")
def ask(s):
    s.sendall(req)
    f = s.makefile("rb")
    return f.readline().decode().strip()
socks = []
for i in range(n):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)          # accepted, or waiting in the backlog (64)
    s.settimeout(10)
    socks.append(s)
if hold:
    open(marker, "w").close()
    time.sleep(hold)
try:
    print(ask(socks[0]))
except OSError as e:
    print("error", e)
for s in socks:
    s.close()
PY
}
ticks() { awk '{ print $14 + $15 }' "/proc/$PID/stat"; }
client 60 4 >"$H_DIR/held.out" &
C=$!
end=$((SECONDS + 10)); until [ -e "$H_DIR/held" ] || [ $SECONDS -ge $end ]; do sleep 0.05; done
# it has reached the limit once it says it backs off
end=$((SECONDS + 10)); until grep -q 'Too many open files.*backing off' "$H_SYNC/policyd.log" || [ $SECONDS -ge $end ]; do sleep 0.05; done
t0=$(ticks); sleep 3; t1=$(ticks)
tap_check "out of descriptors it does not spin on accept(): $((t1 - t0)) ticks of CPU in 3 s" \
    test $((t1 - t0)) -lt 60
tap_check "it said once that it backs off" \
    test "$(grep -c 'Too many open files.*backing off' "$H_SYNC/policyd.log")" = 1
wait "$C"
tap_check "a connection it holds is still served ($(cat "$H_DIR/held.out"))" grep -q '^action=' "$H_DIR/held.out"
tap_check "with the others gone a new connection is served" sh -c "$(declare -f client); SOCK='$SOCK' H_DIR='$H_DIR' client 1 0 | grep -q '^action='"
tap_check "and it is still running" h__alive "$PID"
tap_done
