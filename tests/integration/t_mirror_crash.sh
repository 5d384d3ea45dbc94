#!/usr/bin/env bash
# t_mirror_crash.sh -- never twice, never lost: postlink-mirrord is killed
# with SIGKILL at random points of a first sync of 2,000 messages, again
# and again (MIRROR_KILLS, default 40; the soak: MIRROR_KILLS=200), and
# restarted each time; then a last sync runs to its end.  Every message must be in alice's mailbox
# exactly once, no id left pending, and the primary unchanged.  The kills
# land in every phase: login, listing, the pending records' commit,
# fetching, the hand-over to Postfix, the held record's commit.
set -u
. "${abs_top_srcdir:-.}/tests/integration/tap.sh"
. "$abs_top_srcdir/tests/harness/harness.sh"
. "$abs_top_srcdir/tests/harness/sync.sh"
. "$abs_top_srcdir/tests/harness/mirror.sh"

KILLS=${MIRROR_KILLS:-40} N=${MIRROR_CRASH_MESSAGES:-2000}
h_init || exit 1
hm_setup || { tap_fail "harness starts"; tap_done; exit 1; }
HM_MASTER_PASS=master-$RANDOM$RANDOM
h_dovecot_master_user "$HM_MASTER_PASS"
h_start_sink && h_start_dovecot && hm_mirror_setup && hs_setup && h_start_postfix &&
    hm_start_guard && hm_start_mirrord || { tap_fail "harness starts"; tap_done; exit 1; }
tap_ok "harness with postlink-mirrord starts"

A=$POSTLINK_DEMO_USER
hm_fill "$N" 300 1500
hm_snapshot "$H_DIR/snap0"
tap_check "mirror add alice" hm_add "$A"

kills=0 during=0 end=$((SECONDS + 150)) before=0
copies_logged() { grep -c ' -> alice' "$H_SYNC/mirrord.log"; }
while [ $kills -lt "$KILLS" ] && [ $SECONDS -lt $end ]; do
    "$POSTLINKCTL" mirror sync "$A" >/dev/null 2>&1
    # a random point: 0 to 250 ms after the request (the daemon polls every 250 ms)
    sleep "0.$(printf '%03d' $((RANDOM % 250)))"
    kill -KILL "$HM_MIRRORD_PID" 2>/dev/null
    while h__alive "$HM_MIRRORD_PID"; do sleep 0.01; done
    kills=$((kills + 1))
    now=$(copies_logged)
    [ "$now" -gt "$before" ] && [ "$now" -lt "$N" ] && during=$((during + 1))
    before=$now
    # the first to open the store after a SIGKILL recovers it (~0.7 s here)
    hm_start_mirrord || break
done
tap_diag "$kills kills; $during of them part-way through the fetching (copies handed over before and after)"
tap_check "postlink-mirrord was killed $KILLS times and restarted" test $kills = "$KILLS"
tap_check "at least a quarter landed part-way through the fetching" test $during -ge $((KILLS / 4))
tap_check "a last sync runs to its end" hm_sync "$A"
hm_wait_queue_empty 60
c=$(hm_copies alice)
dups=$(awk '$1 > 1' <<<"$c" | grep -c .)
total=$(grep -c . <<<"$c")
tap_diag "alice: $total distinct messages, $dups with more than one copy"
tap_check "every one of the $N messages is in alice's mailbox" test "$total" = "$N"
tap_check "none twice" test "$dups" = 0
j=$("$POSTLINKCTL" mirror status "$A" --json)
tap_check "no id is left pending; all $N held" jq_true ".ids.pending == 0 and .ids.held == $N" "$j"
g=$(grep -c 'handed over before: this repeat is discarded' "$H_SYNC/guard.log")
r=$(grep -c 'pending since an interrupted sync' "$H_SYNC/mirrord.log")
tap_diag "copies handed over under a token recorded before a kill: $r; repeats the guard discarded: $g"
hm_snapshot "$H_DIR/snap1"
tap_check "the primary is unchanged" hm_same_snapshot "$H_DIR/snap0" "$H_DIR/snap1"
tap_done
