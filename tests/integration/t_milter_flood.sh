#!/usr/bin/env bash
# t_milter_flood.sh -- a peer on the milter socket that sends commands and
# never reads the replies (tests/tools/milter-flood.py) gets no more than
# the replies a socket buffer holds out of the native engine: the
# milter's memory stays bounded while it is flooded, and it goes on
# serving another session meanwhile (miltertest plays that one).
set -u
. "${abs_top_srcdir:-.}/tests/integration/tap.sh"
. "$abs_top_srcdir/tests/harness/harness.sh"
. "$abs_top_srcdir/tests/harness/sync.sh"

command -v miltertest >/dev/null || { tap_fail "miltertest installed"; tap_done; exit 1; }
h_init || exit 1
hs_setup >/dev/null && hs_start_milter || { tap_fail "postlink-sync starts"; tap_done; exit 1; }
tap_ok "postlink-sync starts (native engine)"
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$HS_MILTER_PID/status"; }
before=$(rss)
python3 "$abs_top_srcdir/tests/tools/milter-flood.py" "$H_SYNC/sync-milter.sock" 4 >"$H_DIR/flood.out" &
FLOOD=$!
# meanwhile another session is served (a full transaction, end of message)
cat >"$H_DIR/other.lua" <<LUA
local M = dofile("$abs_top_srcdir/tests/milter/mtlib.lua")
local conn, stage, reply = M.send("unix:$H_SYNC/sync-milter.sock", {
    from = "<a@elsewhere.example>", rcpt = {"<$POSTLINK_DEMO_USER>"},
    headers = {{"Message-ID", "<flood-other@test.invalid>"}, {"Subject", "meanwhile"}}})
mt.disconnect(conn)
print(stage == "eom" and reply == SMFIR_CONTINUE and "served" or ("got " .. tostring(stage)))
LUA
# the flood is being served (its recipients refused) before the other session starts
hs_wait_log "$H_SYNC/milter.log" "127.0.0.9: refused recipient .* in the reserved domain" 10 ||
    tap_fail "the flood reaches the milter"
out=$(timeout 10 miltertest -s "$H_DIR/other.lua" 2>&1)
tap_check "another session is served while the flood goes on ($out)" test "$out" = served
peak=$(rss)
wait $FLOOD; frc=$?
sent=$(cat "$H_DIR/flood.out")
tap_diag "flood: $sent bytes accepted; RSS ${before} kB before, ${peak} kB during"
tap_check "the flood ran: the client pushed commands for 4 s (exit $frc, ${sent:-no} bytes taken)" \
    sh -c "[ $frc = 0 ] && [ '${sent:-0}' -gt 100000 ]"
tap_check "the milter stopped reading the flood (it took ${sent:-0} bytes, under 16 MB)" \
    sh -c "[ '${sent:-0}' -gt 0 ] && [ '${sent:-0}' -lt 16000000 ]"
tap_check "its memory stayed bounded (${peak} kB, under $((before + 32768)) kB)" test "$peak" -lt $((before + 32768))
tap_check "it is still running" h__alive "$HS_MILTER_PID"
tap_done
