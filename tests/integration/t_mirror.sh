#!/usr/bin/env bash
# t_mirror.sh -- capability 2 end to end: postlink-mirrord mirrors the
# primary POP3 mailbox "prim" (the harness's Dovecot) into alice's and
# bob's mailboxes through the private Postfix.  The first sync copies all,
# a later one only the new ids (counted in the primary's own log); what
# fetchmail, the primary's real client, downloads and deletes is withdrawn
# from alice's mailbox (delete mode) or marked read in bob's (mark mode);
# the primary is never changed (read-only IMAP snapshots before and
# after); a mass vanish is held back; a wrong password and a wrong TLS
# certificate are clear errors.
set -u
. "${abs_top_srcdir:-.}/tests/integration/tap.sh"
. "$abs_top_srcdir/tests/harness/harness.sh"
. "$abs_top_srcdir/tests/harness/sync.sh"
. "$abs_top_srcdir/tests/harness/mirror.sh"

h_init || exit 1
H_USERS="$H_USERS dave"
hm_setup || { tap_fail "harness starts"; tap_done; exit 1; }
HM_MASTER_PASS=master-$RANDOM$RANDOM
h_dovecot_master_user "$HM_MASTER_PASS"
# port 25 runs the mirror filter too (before postlink-sync): there it
# removes X-Postlink-Mirror fields strangers write
H_SMTP_OPTS="-o smtpd_milters=unix:$H_DIR/postlink/mirror-guard.sock,unix:$H_DIR/postlink/sync-milter.sock"
h_start_sink && h_start_dovecot && hm_mirror_setup && hs_setup && h_start_postfix &&
    hm_start_guard && hs_start_milter && hm_start_mirrord || { tap_fail "harness starts"; tap_done; exit 1; }
tap_ok "harness with postlink-mirrord starts"

A=$POSTLINK_DEMO_USER B=bob@$POSTLINK_DOMAIN
msgids() { awk -v b="$1" '$1 >= b {print $2}' "$H_DIR/hm-manifest"; }   # fill batch >= N
copies_ok() {   # copies_ok USER EXPECTED-COUNT: every Message-ID once, COUNT in all
    local c; c=$(hm_copies "$1")
    [ "$(awk '$1 != 1' <<<"$c" | grep -c .)" = 0 ] && [ "$(grep -c . <<<"$c")" = "$2" ] ||
        { tap_diag "copies of $1: $(awk '{n+=$1} END {print n+0}' <<<"$c") in $(grep -c . <<<"$c") ids, want $2 once each"; return 1; }
}

# ---- a stranger's X-Postlink-Mirror field is removed at the edge ------
FM=$(hs_msgid forged)
hs_send "$POSTLINK_SMTP_PORT" stranger@elsewhere.example "$A" --header "Message-Id: $FM" \
    --add-header "X-Postlink-Mirror: <0123456789abcdef0123456789abcdef>" >/dev/null
h_wait_maildir_files alice 1
f=$(grep -l -- "$FM" "$(h__maildir alice)"/new/* 2>/dev/null | head -1)
tap_check "a stranger's mail arrives without the X-Postlink-Mirror field it forged" \
    sh -c 'test -n "$0" && ! grep -qi "^X-Postlink-Mirror:" "$0"' "$f"
tap_check "the guard logged the removal" grep -q "removed 1 X-Postlink-Mirror field" "$H_SYNC/guard.log"
rm -f "$f"

# ---- the first sync copies everything, and the primary is unchanged ----
hm_fill 20 2000 30000
hm_snapshot "$H_DIR/snap0"
tap_check "mirror add alice (delete mode)" hm_add "$A" --mode delete
mark=$(hm_log_mark)
tap_check "the first sync succeeds" hm_sync "$A"
hm_wait_queue_empty
tap_check "alice has each of the 20 messages once" copies_ok alice 20
hm_wait_logouts "$mark" 1
read -r -a c <<<"$(hm_pop3_bytes "$mark")"
tap_diag "primary's counters after the first sync: ${c[*]}"
tap_check "the primary sent 20 TOPs, no RETR, no DELE" \
    test "${c[1]}" = top=20 -a "${c[3]}" = retr=0 -a "${c[5]}" = deleted=0
tap_check "the pop3:// login went over STLS (Dovecot logs TLS)" sh -c \
    'tail -n +"$(( $1 + 1 ))" "$0" | grep -F "pop3-login: Info: Login: user=<$2>" | grep -q "TLS"' \
    "$H_DIR/dovecot/dovecot.log" "$mark" "$HM_PRIM_USER"
hm_snapshot "$H_DIR/snap1"
tap_check "the primary is unchanged (UIDs, flags, digests)" hm_same_snapshot "$H_DIR/snap0" "$H_DIR/snap1"
j=$("$POSTLINKCTL" mirror status "$A" --json)
tap_check "status: ok, 20 fetched, 20 held, listing complete" \
    jq_true '.sync.ok and .sync.fetched == 20 and .ids.held == 20 and .sync.complete' "$j"

# ---- new mail: only the new ids are fetched ----------------------------
hm_fill 3 2000 5000
mark=$(hm_log_mark)
tap_check "an incremental sync succeeds" hm_sync "$A"
hm_wait_queue_empty
hm_wait_logouts "$mark" 1
read -r -a c <<<"$(hm_pop3_bytes "$mark")"
want=$(awk '$2 ~ /^<hm-2\./ {s += $4 + 5 + $5} END {print s}' "$H_DIR/hm-manifest")
tap_diag "incremental: ${c[*]} (3 new messages: $want bytes with their +OK lines)"
tap_check "only the 3 new messages were fetched (top=3, top_bytes as their size)" \
    test "${c[1]}" = top=3 -a "${c[2]}" = "top_bytes=$want" -a "${c[3]}" = retr=0
tap_check "alice has 23 messages, each once" copies_ok alice 23
j=$("$POSTLINKCTL" mirror status "$A" --json)
full=$(python3 -c 'import sys; n = int(sys.argv[1]); print(sum(len("%d " % i) + 16 + 2 for i in range(1, n + 1)))' 23)
tap_diag "probes: $(jq -c '.sync.probes' <<<"$j"); a full UIDL listing of 23 would be $full bytes"
tap_check "the ids grow (Dovecot's UIDs): listed by a few UIDL n probes, not in full" \
    jq_true '.sync.probes > 0 and .sync.probes <= 12' "$j"
tap_check "(the log says so)" grep -q "mirror $A: sync done .*(listed by UIDL n probes)" "$H_SYNC/mirrord.log"
tap_check "the primary sent less than the 3 messages plus a full listing (${c[7]#bytes_out=} - ${c[2]#top_bytes=} < $full + 200)" \
    test $(( ${c[7]#bytes_out=} - ${c[2]#top_bytes=} )) -lt $(( full + 200 ))
mark=$(hm_log_mark)
tap_check "a sync with nothing new succeeds" hm_sync "$A"
hm_wait_logouts "$mark" 1
read -r -a c <<<"$(hm_pop3_bytes "$mark")"
tap_check "and fetches nothing (top=0)" test "${c[1]}" = top=0
hm_snapshot "$H_DIR/snap2"

# ---- mark mode for bob ---------------------------------------------------
tap_check "mirror add bob (mark mode)" hm_add "$B" --mode mark
tap_check "bob's first sync" hm_sync "$B"
hm_wait_queue_empty
tap_check "bob has the 23 messages once each" copies_ok bob 23

# ---- fetchmail reads 2 on the primary (and deletes them there) -----------
gone=$(msgids 1 | head -2)
# alice also has a device (capability 1): a withdrawal is an X-Control for it
PHONE=alice-phone@devices.test
"$POSTLINKCTL" device add "$A" "$PHONE" >/dev/null && hs_start_syncd ||
    tap_fail "postlink-syncd starts"
hm_fetchmail_take 2
tap_check "fetchmail took 2 messages" test "$(ls "$H_DIR/fetchmail" | grep -c .)" = 2
tap_check "alice's sync after that" hm_sync "$A"
j=$("$POSTLINKCTL" mirror status "$A" --json)
tap_check "status: 2 withdrawn, 0 fetched, 2 tombstones" \
    jq_true '.sync.withdrawn == 2 and .sync.fetched == 0 and .ids.tombstones == 2 and .ids.held == 21' "$j"
left=$(hm_copies alice)
n=0; for m in $gone; do grep -qF -- " $m" <<<"$left" && n=$((n + 1)); done
tap_check "the 2 copies read on the primary are gone from alice's mailbox" test $n = 0
tap_check "the other 21 stay" copies_ok alice 21
ctl_copies() {   # the sink's "X-Control: deleted" copies naming one of $gone
    local n=0 m
    for m in $gone; do
        grep -l -- "X-Control-Target: $m" $(hs_sink_grep 'X-Control: deleted') /dev/null 2>/dev/null |
            grep -q . && n=$((n + 1))
    done
    echo $n
}
end=$((SECONDS + 15))
until [ "$(ctl_copies)" = 2 ] || [ $SECONDS -ge $end ]; do sleep 0.1; done
tap_check "alice's device got \"X-Control: deleted\" for both" test "$(ctl_copies)" = 2
j=$("$POSTLINKCTL" state show "$A" --json)
tap_check "the sync state has both as deleted" \
    jq_true "[.[] | select(.states | index(\"deleted\"))] | length == 2" "$j"
tap_check "bob's sync after that" hm_sync "$B"
j=$("$POSTLINKCTL" mirror status "$B" --json)
tap_check "bob's status: 2 marked" jq_true '.sync.marked == 2 and .sync.withdrawn == 0' "$j"
BMD=$(h__maildir bob)
seen=0
for m in $gone; do
    f=$(grep -ls -- "$m" "$BMD"/cur/* "$BMD"/new/* 2>/dev/null | head -1)
    case $f in *:2,*S*) seen=$((seen + 1)) ;; esac
done
tap_check "bob keeps both copies, marked \\Seen" test $seen = 2
tap_check "bob still has 23 messages" copies_ok bob 23

# ---- the mass-vanish guard ------------------------------------------------
hm_fill 30 1000 2000
tap_check "sync of the 30 new ones" hm_sync "$A"
hm_wait_queue_empty
hm_fetchmail_take 40
tap_check "sync after 40 of 51 vanished" hm_sync "$A"
j=$("$POSTLINKCTL" mirror status "$A" --json)
tap_check "the guard held the 40 withdrawals back" \
    jq_true '.sync.guard and .sync.held_back == 40 and .sync.withdrawn == 0' "$j"
tap_check "alice still has all 51 copies" copies_ok alice 51
tap_check "status says ALERT" sh -c '"$POSTLINKCTL" mirror status "$0" | grep -q "ALERT: *40 ids vanished"' "$A"
tap_check "the next sync" hm_sync "$A"
j=$("$POSTLINKCTL" mirror status "$A" --json)
tap_check "still holds them back (the guard does not wear off by itself)" \
    jq_true '.sync.guard and .sync.held_back == 40 and .sync.withdrawn == 0 and .ids.held == 51' "$j"
tap_check "mirror release alice --wait 30" sh -c '"$POSTLINKCTL" mirror release "$0" --wait 30 >/dev/null' "$A"
j=$("$POSTLINKCTL" mirror status "$A" --json)
tap_check "release: the 40 withdrawn, 11 held, the status says what it was" \
    jq_true '.sync.what == "release" and .sync.withdrawn == 40 and (.sync.guard | not) and .ids.held == 11' "$j"
tap_check "alice has the 11 copies left on the primary" copies_ok alice 11
tap_check "the next sync withdraws nothing more" hm_sync "$A"
j=$("$POSTLINKCTL" mirror status "$A" --json)
tap_check "(0 withdrawn, 0 fetched, no guard)" \
    jq_true '.sync.withdrawn == 0 and .sync.fetched == 0 and (.sync.guard | not) and .ids.held == 11' "$j"
tap_check "mirror add to an address no withdrawal can reach warns (and still adds)" sh -c \
    '"$0" mirror add erin@$1 --primary "pop3://127.0.0.1:1" --login x --secret-file "$2" --deliver-to erin@elsewhere.example 2>&1 >/dev/null | grep -q "warning: neither imap_url .* covers elsewhere.example" && "$0" mirror del erin@$1 >/dev/null' \
    "$POSTLINKCTL" "$POSTLINK_DOMAIN" "$HM_SECRET"
tap_check "... and not for alice's domain (imap_url set)" sh -c \
    'e=$("$0" mirror add erin@$1 --primary "pop3://127.0.0.1:1" --login x --secret-file "$2" --deliver-to erin@$1 2>&1 >/dev/null) && "$0" mirror del erin@$1 >/dev/null && ! printf %s "$e" | grep -q warning' \
    "$POSTLINKCTL" "$POSTLINK_DOMAIN" "$HM_SECRET"
tap_check "release of an account that does not exist fails" \
    sh -c '! "$POSTLINKCTL" mirror release nobody@example.invalid 2>/dev/null'

# ---- bad logins and certificates --------------------------------------------
BADPW=bad-secret-$RANDOM
printf '%s\n' "$BADPW" >"$H_DIR/hm-secret/bad" && chown postlink "$H_DIR/hm-secret/bad" && chmod 0600 "$H_DIR/hm-secret/bad"
"$POSTLINKCTL" mirror add carol@$POSTLINK_DOMAIN --primary "pop3://127.0.0.1:$POSTLINK_POP3_PORT" \
    --ca-file "$HM_CA" --tls-name "$HM_TLS_NAME" \
    --login "$HM_PRIM_USER" --secret-file "$H_DIR/hm-secret/bad" --deliver-to carol@$POSTLINK_DOMAIN \
    --interval 60 >/dev/null
tap_check "a wrong password fails the sync" sh -c '! "$POSTLINKCTL" mirror sync "$0" --wait 30 >/dev/null' carol@$POSTLINK_DOMAIN
j=$("$POSTLINKCTL" mirror status carol@$POSTLINK_DOMAIN --json)
tap_check "status: auth_failed, the next try hours away (no storm)" \
    jq_true '(.sync.auth_failed) and (.sync.next - .sync.last >= 3600)' "$j"
ps axww >"$H_DIR/ps.txt"
tap_check "no password is in a log, or in ps output" \
    env P1="$BADPW" P2="$HM_PRIM_PASS" sh -c '! grep -qsF -e "$P1" -e "$P2" "$H_SYNC"/*.log "$H_DIR/ps.txt"' 
"$POSTLINKCTL" mirror del carol@$POSTLINK_DOMAIN >/dev/null
C=carol@$POSTLINK_DOMAIN
pop3s_add() { "$POSTLINKCTL" mirror add "$C" --replace --primary "pop3s://127.0.0.1:$HM_POP3S_PORT" \
    --login "$HM_PRIM_USER" --secret-file "$HM_SECRET" --deliver-to "$C" --interval 0 "$@" >/dev/null; }
pop3s_add --tls-name "$HM_TLS_NAME"
tap_check "pop3s with a self-signed certificate and no CA file fails" sh -c '! "$POSTLINKCTL" mirror sync "$0" --wait 30 >/dev/null' "$C"
tap_check "with the reason in status" sh -c '"$POSTLINKCTL" mirror status "$0" --json | jq -e ".sync.error | test(\"certificate\")" >/dev/null' "$C"
pop3s_add --tls-name expired.$POSTLINK_DOMAIN --ca-file "$HM_EXPIRED_CA"
tap_check "an expired certificate fails" sh -c '! "$POSTLINKCTL" mirror sync "$0" --wait 30 >/dev/null' "$C"
tap_check "and says expired" sh -c '"$POSTLINKCTL" mirror status "$0" --json | jq -e ".sync.error | test(\"expired\")" >/dev/null' "$C"
pop3s_add --tls-name "$HM_TLS_NAME" --ca-file "$HM_CA"
tap_check "pop3s with the right CA file syncs" hm_sync "$C"
hm_wait_queue_empty
n=$(grep -c . <<<"$(hm_copies carol)")
tap_check "carol has the 11 messages left on the primary" test "$n" = 11

# ---- --adopt: the ids listed now count as delivered, a vanished one is forgotten
D=dave@$POSTLINK_DOMAIN
tap_check "mirror add dave --adopt" hm_add "$D" --adopt
mark=$(hm_log_mark)
tap_check "dave's first sync adopts" hm_sync "$D"
hm_wait_logouts "$mark" 1
read -r -a c <<<"$(hm_pop3_bytes "$mark")"
j=$("$POSTLINKCTL" mirror status "$D" --json)
tap_check "11 ids adopted, none fetched, nothing delivered to dave" \
    jq_true '.sync.adopted == 11 and .sync.fetched == 0 and .ids.seen == 11 and (.adopt | not)' "$j"
tap_check "dave's mailbox is empty" test "$(h_count_maildir_files dave)" = 0
tap_diag "adopting read headers only: ${c[*]}"
tap_check "adopting read no body (11 TOP n 0: under 4 kB)" test "${c[2]#top_bytes=}" -lt 4000
hm_fill 1 1000 2000
hm_fetchmail_take 1
tap_check "dave's next sync" hm_sync "$D"
hm_wait_queue_empty
j=$("$POSTLINKCTL" mirror status "$D" --json)
tap_check "the new message fetched, the adopted one read elsewhere forgotten" \
    jq_true '.sync.fetched == 1 and .sync.forgotten == 1 and .sync.withdrawn == 0' "$j"
tap_check "dave has just the new message" test "$(h_count_maildir_files dave)" = 1

# ---- a migrated primary: every UIDL changes, nothing is fetched twice -------
hm_change_uidl_scheme
mark=$(hm_log_mark)
tap_check "the sync after the id scheme changed" hm_sync "$D"
hm_wait_logouts "$mark" 1
read -r -a c <<<"$(hm_pop3_bytes "$mark")"
j=$("$POSTLINKCTL" mirror status "$D" --json)
tap_diag "after the change: ${c[*]}; $(jq -c '{remapped: .sync.remapped, fetched: .sync.fetched, ids: .ids}' <<<"$j")"
tap_check "all 11 ids re-mapped by their headers, none fetched, none withdrawn" \
    jq_true '.sync.remapped == 11 and .sync.fetched == 0 and .sync.withdrawn == 0 and .sync.forgotten == 0' "$j"
tap_check "and only headers were read (under 4 kB)" test "${c[2]#top_bytes=}" -lt 4000
tap_check "dave still has 1 message" test "$(h_count_maildir_files dave)" = 1
mark=$(hm_log_mark)
tap_check "the next sync" hm_sync "$D"
hm_wait_logouts "$mark" 1
read -r -a c <<<"$(hm_pop3_bytes "$mark")"
tap_check "needs no re-mapping and reads nothing (top=0)" test "${c[1]}" = top=0

mark=$(hm_log_mark)
hm_snapshot "$H_DIR/snap3"
"$POSTLINKCTL" mirror sync "$A" --wait 30 >/dev/null
hm_snapshot "$H_DIR/snap4"
tap_check "a sync changes nothing on the primary" hm_same_snapshot "$H_DIR/snap3" "$H_DIR/snap4"
tap_check "postlink-mirrord is still running" h__alive "$HM_MIRRORD_PID"
tap_done
