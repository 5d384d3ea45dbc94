#!/usr/bin/env bash
# t_milter_stop.sh -- SIGTERM of a milter (postlink-sync, on the server
# skeleton's libmilter variant) while a transaction is in progress and new
# sessions keep coming: the new sessions are not served (Postfix applies
# milter_default_action = tempfail), the milter waits for the transaction
# it had begun and finishes it properly, then exits 0 -- however many new
# sessions it refused meanwhile.  miltertest(8) plays Postfix.
set -u
. "${abs_top_srcdir:-.}/tests/integration/tap.sh"
. "$abs_top_srcdir/tests/harness/harness.sh"
. "$abs_top_srcdir/tests/harness/sync.sh"

command -v miltertest >/dev/null || { tap_fail "miltertest installed"; tap_done; exit 1; }
h_init || exit 1
HS_CONF_EXTRA="shutdown_timeout = 30s"
hs_setup >/dev/null && "$POSTLINKCTL" device add "alice@$POSTLINK_DOMAIN" alice-phone@devices.test >/dev/null &&
    hs_start_milter || { tap_fail "postlink-sync starts"; tap_done; exit 1; }
tap_ok "postlink-sync starts"

# mt SCRIPT-ARGS...: run stop.lua, its ok/not ok lines become TAP results
mt() {
    miltertest -s "$abs_top_srcdir/tests/milter/stop.lua" -D lib="$abs_top_srcdir/tests/milter/mtlib.lua" \
        -D sock="unix:$H_SYNC/sync-milter.sock" -D rcpt="alice@$POSTLINK_DOMAIN" \
        -D device=alice-phone@devices.test "$@" 2>&1
}
report() {   # OUTPUT: turn the script's lines into TAP
    local line
    while IFS= read -r line; do
        case $line in
        "ok - "*) tap_ok "${line#ok - }" ;;
        "not ok - "*) tap_fail "${line#not ok - }" ;;
        done) ;;
        *) tap_diag "$line" ;;
        esac
    done <<<"$1"
}
wait_file() { local end=$((SECONDS + 20)); until [ -e "$1" ] || [ $SECONDS -ge $end ]; do sleep 0.05; done; [ -e "$1" ]; }

mt -D role=held -D marker="$H_DIR/in-txn" -D go="$H_DIR/go" >"$H_DIR/held.out" &
HELD=$!
tap_check "the held session is inside its transaction" wait_file "$H_DIR/in-txn"
kill -TERM "$HS_MILTER_PID"
tap_check "the milter logs that it is stopping" \
    sh -c "for i in \$(seq 100); do grep -q 'stopping (SIGTERM)' '$H_SYNC/milter.log' && exit 0; sleep 0.05; done; exit 1"
for i in 1 2 3 4; do
    out=$(mt -D role=new)
    # miltertest exits at once when the milter closes the session at
    # negotiation ("read ... returned 0"); a served session says "not ok - new"
    if grep -q '^ok - new' <<<"$out" || { grep -q 'returned 0' <<<"$out" && ! grep -q '^not ok' <<<"$out"; }; then
        tap_ok "new session $i during the stop is not served"
    else
        tap_fail "new session $i during the stop is not served"; tap_diag "$out"
    fi
done
tap_check "after refusing 4 new sessions the milter still waits for the held transaction" \
    h__alive "$HS_MILTER_PID"
touch "$H_DIR/go"
wait "$HELD"
report "$(cat "$H_DIR/held.out")"
end=$((SECONDS + 20))
while h__alive "$HS_MILTER_PID" && [ $SECONDS -lt $end ]; do sleep 0.05; done
wait "$HS_MILTER_PID"; rc=$?
tap_check "then the milter exits with status 0 ($rc)" test "$rc" = 0
tap_check "it logged 'stopped' and cut nothing" \
    sh -c "grep -q ' stopped' '$H_SYNC/milter.log' && ! grep -q 'still busy\|still inside' '$H_SYNC/milter.log'"
tap_done
