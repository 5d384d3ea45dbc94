#!/usr/bin/env bash
# t_mirror_push.sh -- capability 2 into capability 5: postlink-mirrord
# mirrors the primary POP3 mailbox "prim" (the harness's Dovecot) into the
# push store of alice (mirror add --deliver-to push), and her devices
# fetch the copies from postlink-pushd: byte for byte the primary's
# messages, the primary unchanged; what fetchmail (the primary's real
# client) downloads and deletes is withdrawn from the queue of a device
# that was not sent it yet, while a copy sent but not acknowledged stays;
# POST /v1/sync from a device starts a sync (401 for a wrong token, 404
# without a mirror account); mark mode stores short notices and "mirror
# fetch" the whole message; and SIGKILLs of postlink-mirrord during a
# first sync of 2,000 messages into push (copies written to the OS, not
# flushed, each with its record: the kills land mid-fetch even at that
# speed) leave every message exactly once at the device.
set -u
. "${abs_top_srcdir:-.}/tests/integration/tap.sh"
. "$abs_top_srcdir/tests/harness/harness.sh"
. "$abs_top_srcdir/tests/harness/sync.sh"
. "$abs_top_srcdir/tests/harness/mirror.sh"
. "$abs_top_srcdir/tests/harness/push.sh"

KILLS=${MIRROR_PUSH_KILLS:-5} NCRASH=${MIRROR_PUSH_CRASH_MESSAGES:-2000}
h_init || exit 1
hm_setup || { tap_fail "harness starts"; tap_done; exit 1; }
HM_MASTER_PASS=master-$RANDOM$RANDOM
h_dovecot_master_user "$HM_MASTER_PASS"
# no Postfix: the copies go into the push store, not through SMTP
h_start_dovecot && hm_mirror_setup && hp_setup && hp_start_pushd && hm_start_mirrord ||
    { tap_fail "harness starts"; tap_done; exit 1; }
tap_ok "harness with postlink-mirrord and postlink-pushd starts"

D=$POSTLINK_DOMAIN A=$POSTLINK_DEMO_USER B=bob@$D C=carol@$D V=dave@$D
queue_json() { "$POSTLINKCTL" push queue "$1" --json; }
qstate() { queue_json "$1" | jq -r --arg id "$2" --arg d "$3" \
    '.messages[] | select(.id == $id) | .devices[] | select(.device == $d) | .state'; }
field() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" <<<"$2"; }
# msgids DIR: the Message-IDs of the .eml files in DIR, sorted, one a line
msgids() { cat "$1"/*.eml 2>/dev/null | grep -a -i '^Message-ID:' | sed 's/^[^:]*: *//' | tr -d '\r' | sort; }
# same_bytes DIR: every .eml in DIR is, line ends aside, the primary's
# message with its Message-ID (from the copy of the maildir in $H_DIR/prim0)
same_bytes() {
    python3 - "$1" "$H_DIR/prim0" <<'PY'
import os, re, sys
d, p = sys.argv[1:]
def mid(b):
    m = re.search(rb"(?im)^Message-ID:\s*(<[^>]*>)", b.split(b"\n\n", 1)[0].replace(b"\r", b""))
    return m.group(1) if m else None
prim = {}
for f in os.listdir(p):
    b = open(os.path.join(p, f), "rb").read()
    prim[mid(b)] = b
bad = 0
for f in os.listdir(d):
    if not f.endswith(".eml"):
        continue
    b = open(os.path.join(d, f), "rb").read().replace(b"\r\n", b"\n")
    if prim.get(mid(b)) != b:
        bad += 1
        print("differs: %s (%s)" % (f, mid(b)), file=sys.stderr)
sys.exit(1 if bad else 0)
PY
}
drain() { mkdir -p "$3" && hp_client "$1" "$2" drain --dir "$3" >"$3.out" 2>&1; }   # USER DEVICE DIR
snap_prim() { rm -rf "$H_DIR/prim0"; mkdir -p "$H_DIR/prim0"; cp "$(h__maildir "$HM_PRIM_USER")"/new/* "$(h__maildir "$HM_PRIM_USER")"/cur/* "$H_DIR/prim0/" 2>/dev/null; ls "$H_DIR/prim0" | grep -q .; }
sync_post() {   # sync_post TOKEN-FILE: POST /v1/sync; "STATUS BODY"
    curl -s -o "$H_DIR/sync.body" -w '%{http_code}' -X POST \
        -H "Authorization: Bearer $(cat "$1")" "$POSTLINK_PUSH_URL/v1/sync"
    printf ' %s' "$(tr -d '\n' <"$H_DIR/sync.body")"
}

# ---- accounts ---------------------------------------------------------------
hm_fill 20 2000 20000
snap_prim
hm_snapshot "$H_DIR/snap0"
"$POSTLINKCTL" mirror add "$C" --primary "pop3://127.0.0.1:$POSTLINK_POP3_PORT" --login x \
    --secret-file "$HM_SECRET" --deliver-to push >/dev/null 2>"$H_DIR/add.err"
rc=$?
tap_check "mirror add --deliver-to push for a user without a push device fails (exit $rc)" test $rc != 0
tap_check "... with a clear error" grep -q "carol@$D has no push device (postlinkctl push device add" "$H_DIR/add.err"
tap_check "... and adds nothing" jq_true "[.[] | select(.user == \"$C\")] | length == 0" \
    "$("$POSTLINKCTL" mirror list --json)"
devices() { hp_device "$A" phone && hp_device "$A" tablet && hp_device "$C" phone; }
tap_check "device add alice/phone, alice/tablet, carol/phone" devices
tap_check "mirror add alice --deliver-to push (delete mode)" hm_add "$A" --deliver-to push --mode delete
tap_check "mirror list shows deliver_to push (text)" \
    sh -c '"$0" mirror list | grep -F "$1" | grep -qw push' "$POSTLINKCTL" "$A"
tap_check "... and in --json" jq_true \
    "[.[] | select(.user == \"$A\")] | .[0].deliver_to == \"push\"" "$("$POSTLINKCTL" mirror list --json)"
tap_check "mirror status --json shows deliver_to push" \
    jq_true '.. | objects | select(has("deliver_to")) | .deliver_to == "push"' \
    "$("$POSTLINKCTL" mirror status "$A" --json)"

# ---- the first sync: into the push store, the primary unchanged ------------
tap_check "the first sync succeeds" hm_sync "$A"
j=$("$POSTLINKCTL" mirror status "$A" --json)
tap_check "status: ok, 20 fetched, 20 held" jq_true '.sync.ok and .sync.fetched == 20 and .ids.held == 20 and .ids.pending == 0' "$j"
q=$(queue_json "$A")
tap_check "the push queue holds 20 messages, waiting for both devices, each with a reference" \
    jq_true '(.messages | length) == 20 and ([.messages[].devices[].state] | unique) == ["waiting"] and ([.messages[].ref | select(length == 32)] | length) == 20' "$q"
tap_check "the log names the push store" grep -q "mirror $A: .* -> the push store as [0-9a-f]\{32\}" "$H_SYNC/mirrord.log"
hm_snapshot "$H_DIR/snap1"
tap_check "the primary is unchanged (UIDs, flags, digests)" hm_same_snapshot "$H_DIR/snap0" "$H_DIR/snap1"
drain "$A" tablet "$H_DIR/tablet"
tap_check "the tablet drains exactly 20 messages" grep -q 'messages=20 redelivered=0' "$H_DIR/tablet.out"
tap_check "... the 20 Message-IDs of the primary" test "$(msgids "$H_DIR/tablet")" = "$(awk '{print $2}' "$H_DIR/hm-manifest" | sort)"
tap_check "... each byte for byte the primary's message (line ends aside)" same_bytes "$H_DIR/tablet"

# ---- read on the primary before the phone fetched it: withdrawn --------------
r=$(hp_client "$A" phone get first --out "$H_DIR/sent1")
SENT=$(field id "$r")
tap_check "the phone is sent the oldest message and does not acknowledge it" \
    test "$(qstate "$A" "$SENT" phone) $(grep -c '^Message-ID: <hm-1.1@primary.test>' "$H_DIR/sent1")" = "sent 1"
hm_fetchmail_take 3
tap_check "fetchmail took the 3 oldest messages on the primary" test "$(ls "$H_DIR/fetchmail" | grep -c .)" = 3
tap_check "the sync after that" hm_sync "$A"
j=$("$POSTLINKCTL" mirror status "$A" --json)
tap_check "status: 3 withdrawn, 0 fetched, 3 tombstones" \
    jq_true '.sync.ok and .sync.withdrawn == 3 and .sync.fetched == 0 and .ids.tombstones == 3 and .ids.held == 17' "$j"
q=$(queue_json "$A")
tap_check "the phone's queue: 18 messages (2 withdrawn)" jq_true '(.messages | length) == 18' "$q"
tap_check "... the one sent and not acknowledged stays, still sent" test "$(qstate "$A" "$SENT" phone)" = sent
tap_check "the log counts the withdrawals per device queue" \
    sh -c 'test "$(grep -c "mirror $0: .* was read on the primary: withdrawn from 1 device queue(s)" "$1")" = 2 &&
           grep -q "mirror $0: .* was read on the primary: withdrawn from 0 device queue(s)" "$1"' "$A" "$H_SYNC/mirrord.log"
drain "$A" phone "$H_DIR/phone"
tap_check "the phone drains 18 messages" grep -q 'messages=18 ' "$H_DIR/phone.out"
want=$(awk '$1 != 2 && $1 != 3 {print $2}' "$H_DIR/hm-manifest" | sort)
tap_check "... all but the 2 withdrawn (it never receives them), the sent one included" \
    test "$(msgids "$H_DIR/phone")" = "$want"
tap_check "... byte for byte the primary's" same_bytes "$H_DIR/phone"
tap_check "alice's queue is empty now" jq_true '(.messages | length) == 0' "$(queue_json "$A")"

# ---- POST /v1/sync from the device -------------------------------------------
hm_fill 1 2000 3000
snap_prim
hp_client "$A" phone wait --timeout 30 >"$H_DIR/wait.out" 2>&1 &
WAITER=$!
# the wait is held (its connection is established) before the sync is asked
# for, so that its 200 proves it was woken by the mirrored mail
tap_check "the phone's wait is held" hp_until_held
n0=$(grep -c "mirror $A: .* -> the push store" "$H_SYNC/mirrord.log")
r=$(sync_post "$H_DIR/token-$A-phone")
tap_check "POST /v1/sync with the phone's token: 202 ($r)" test "${r%% *}" = 202
tap_check "pushd logged the request" grep -q "$A: device phone asked for a mirror sync" "$H_SYNC/pushd.log"
end=$(( $(h__ms) + 30000 ))
until [ "$(grep -c "mirror $A: .* -> the push store" "$H_SYNC/mirrord.log")" -gt "$n0" ] ||
    [ "$(h__ms)" -ge $end ]; do sleep 0.002; done
t1=$(h__ms)
wait "$WAITER"
t2=$(h__ms)
tap_check "the phone's held wait ends with the mirrored mail" grep -q 'status=200' "$H_DIR/wait.out"
tap_check "... $(( t2 - t1 )) ms after postlink-mirrord stored it (pushd polls the store every 0.5 s)" \
    test $(( t2 - t1 )) -le 900
drain "$A" phone "$H_DIR/phone2"
tap_check "... the new message reaches the phone without postlinkctl mirror sync" \
    test "$(msgids "$H_DIR/phone2")" = "<hm-$HM_BATCH.$HM_SEQ@primary.test>"
tap_check "... byte for byte" same_bytes "$H_DIR/phone2"
echo "0000000000000000.$(printf '%064d' 0)" >"$H_DIR/bad-token"
r=$(sync_post "$H_DIR/bad-token")
tap_check "a wrong token: 401 ($r)" test "${r%% *}" = 401
r=$(sync_post "$H_DIR/token-$C-phone")
tap_check "a user without a mirror account: 404 \"no mirror account for this user\" ($r)" \
    test "$r" = "404 no mirror account for this user"

# ---- the user's last device deleted after mirror add: nothing lost ----------
E=erin@$D
hp_device "$E" phone && hm_add "$E" --deliver-to push && "$POSTLINKCTL" push device del "$E" phone >/dev/null ||
    tap_fail "erin: device add, mirror add, device del"
hm_sync "$E"
tap_check "a sync for a user without a push device fails" test $? != 0
j=$("$POSTLINKCTL" mirror status "$E" --json)
tap_check "... with the reason in mirror status; nothing held, ids pending" \
    jq_true '(.sync.ok | not) and (.sync.error | test("has no push device")) and .ids.held == 0 and .ids.pending > 0' "$j"
n=$(hm_uidls | grep -c .)
hp_device "$E" tablet || tap_fail "device add erin/tablet"
tap_check "after a device is added, the next sync succeeds" hm_sync "$E"
drain "$E" tablet "$H_DIR/erin"
tap_check "... and the device gets every one of the $n messages once" \
    test "$(msgids "$H_DIR/erin" | sort -u | grep -c .) $(grep -c . <(msgids "$H_DIR/erin"))" = "$n $n"

# ---- mark mode: short notices, the whole message on request -----------------
hp_device "$B" phone || tap_fail "device add bob/phone"
tap_check "mirror add bob --deliver-to push (mark mode)" hm_add "$B" --deliver-to push --mode mark
tap_check "bob's first sync" hm_sync "$B"
drain "$B" phone "$H_DIR/bob"
n=$(grep -c . <(msgids "$H_DIR/bob"))
tap_check "bob's phone gets 18 short notices ($n), no whole message" \
    sh -c 'test "$0" = 18 && test "$(grep -l -a "^X-Postlink-Mirror-Notice:" "$1"/*.eml | wc -l)" = 18 &&
           ! grep -q -a "^X-HM-Seq:" "$1"/*.eml' "$n" "$H_DIR/bob"
f=$(grep -l -a "^X-Postlink-Mirror-Of: <hm-1.4@primary.test>" "$H_DIR/bob"/*.eml | head -1)
tap_check "a notice has the original's From, Subject and Date, and says how to fetch it" \
    sh -c 'grep -q -a "^From: Sender 1 <sender-1@remote.test>" "$0" && grep -q -a "^Subject: hm message 4 (batch 1)" "$0" &&
           grep -q -a "^Date: " "$0" && grep -q -a "postlinkctl mirror fetch $1 " "$0"' "$f" "$B"
U=$(sed -n 's/^X-Postlink-Mirror-Notice: //p' "$f" | tr -d '\r')
fetch_u() { "$POSTLINKCTL" mirror fetch "$B" "$U" --wait 60 >"$H_DIR/fetch.out" 2>&1; }
tap_check "mirror fetch bob $U" fetch_u
drain "$B" phone "$H_DIR/bob2"
tap_check "... the whole message reaches bob's phone" test "$(cat "$H_DIR/bob2"/*.eml | grep -a -c '^X-HM-Seq: 4')" = 1
tap_check "... byte for byte" same_bytes "$H_DIR/bob2"

# ---- SIGKILL during a first sync into push: every message exactly once ------
hm_fill "$NCRASH" 300 1500
hp_device "$V" phone || tap_fail "device add dave/phone"
total=$(hm_uidls | grep -c .)
kills=0 during=0 before=0
# distinct ids stored so far (a pending id stored again after a kill is logged again)
stored() { grep -o "mirror $V: [^ ]* ([0-9]* bytes) -> the push store" "$H_SYNC/mirrord.log" | sort -u | grep -c .; }
tap_check "mirror add dave --deliver-to push" hm_add "$V" --deliver-to push
while [ $kills -lt "$KILLS" ]; do
    # in the background: the sync may be done before postlinkctl closed the store
    "$POSTLINKCTL" mirror sync "$V" >/dev/null 2>&1 &
    # a random point of the fetching: after 5 to 34 more copies were stored
    # (a sync a kill interrupted is resumed by the restarted daemon: its
    # request is still there)
    want=$((before + 5 + RANDOM % 30)) end=$(( $(h__ms) + 20000 ))
    until [ "$(stored)" -ge $want ] || [ "$(h__ms)" -ge $end ]; do sleep 0.002; done
    kill -KILL "$HM_MIRRORD_PID" 2>/dev/null
    while h__alive "$HM_MIRRORD_PID"; do sleep 0.01; done
    kills=$((kills + 1))
    now=$(stored)
    [ "$now" -gt "$before" ] && [ "$now" -lt "$total" ] && during=$((during + 1))
    before=$now
    wait $! 2>/dev/null
    hm_start_mirrord || break
done
tap_diag "$kills kills; $during of them part-way through the fetching ($before of $total stored before the last)"
tap_check "postlink-mirrord was killed $KILLS times and restarted" test $kills = "$KILLS"
tap_check "at least 3 kills landed part-way through the fetching" test $during -ge 3
tap_check "a last sync runs to its end" hm_sync "$V"
# A process killed inside the store's library can leave a mutex that makes
# another one exit so that a fresh process recovers the store (db/store_bdb.c):
# postlink-pushd is started again then, as its supervisor would.
if ! h__alive "$HP_PUSHD_PID"; then
    tap_diag "postlink-pushd exited meanwhile: $(grep -c 'exiting so that a fresh process recovers' "$H_SYNC/pushd.log") time(s) (the store's rule after a SIGKILL); started again"
    hp_start_pushd || tap_fail "postlink-pushd starts again"
fi
drain "$V" phone "$H_DIR/dave"
m=$(msgids "$H_DIR/dave")
dups=$(uniq -d <<<"$m" | grep -c .)
tap_diag "dave's phone: $(grep -c . <<<"$m") messages, $dups Message-IDs more than once; the primary lists $total"
tap_check "every message on the primary reached dave's phone" test "$(sort -u <<<"$m" | grep -c .)" = "$total"
tap_check "none twice (one transaction for the put and the held record)" test "$dups" = 0
j=$("$POSTLINKCTL" mirror status "$V" --json)
tap_check "no id is left pending; all $total held" jq_true ".ids.pending == 0 and .ids.held == $total" "$j"
tap_diag "copies stored under a token recorded before a kill: $(grep -c "mirror $V: .*pending since an interrupted sync" "$H_SYNC/mirrord.log")"
tap_done
