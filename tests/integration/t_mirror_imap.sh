#!/usr/bin/env bash
# t_mirror_imap.sh -- capability 2 with an IMAP primary: postlink-mirrord
# mirrors the harness Dovecot's INBOX of "prim" over IMAP (EXAMINE,
# BODY.PEEK) into alice's mailbox.  The first sync copies all (the copies'
# headers and bytes are the primary's), a later one only the new UIDs
# (counted in Dovecot's own imap logout line), what a real client expunges
# on the primary is withdrawn (delete mode), a UIDVALIDITY change is
# re-mapped by Message-ID and size without fetching again, an imaps
# certificate that cannot be verified is a clear error, and the primary is
# never changed (read-only snapshots: UIDs, flags, digests).
set -u
. "${abs_top_srcdir:-.}/tests/integration/tap.sh"
. "$abs_top_srcdir/tests/harness/harness.sh"
. "$abs_top_srcdir/tests/harness/sync.sh"
. "$abs_top_srcdir/tests/harness/mirror.sh"

h_init || exit 1
H_USERS="$H_USERS erin"          # the fake primary's mirror
hm_setup || { tap_fail "harness starts"; tap_done; exit 1; }
HM_MASTER_PASS=master-$RANDOM$RANDOM
h_dovecot_master_user "$HM_MASTER_PASS"
IMAPS_PORT=$(h_free_port)
# an imaps listener, and per-session counters in Dovecot's imap logout line
H_DOVECOT_EXTRA="$H_DOVECOT_EXTRA
# --- t_mirror_imap.sh
service imap-login {
  inet_listener imaps {
    address = 127.0.0.1
    port = $IMAPS_PORT
    ssl = yes
  }
}
protocol imap {
  imap_logout_format = hmi body_count=%{fetch_body_count} body_bytes=%{fetch_body_bytes} hdr_count=%{fetch_hdr_count} hdr_bytes=%{fetch_hdr_bytes} expunged=%{expunged} in=%i out=%o
}"
h_start_sink && h_start_dovecot && h_wait_port "$IMAPS_PORT" 10 && hm_mirror_setup && hs_setup &&
    h_start_postfix && hm_start_guard && hs_start_milter && hm_start_mirrord ||
    { tap_fail "harness starts"; tap_done; exit 1; }
tap_ok "harness with postlink-mirrord and an imaps listener starts"

A=$POSTLINK_DEMO_USER
PRIM=imap://127.0.0.1:$POSTLINK_IMAP_PORT
imap_add() { local u=$1; shift
    "$POSTLINKCTL" mirror add "$u" --replace --primary "$PRIM" --login "$HM_PRIM_USER" \
        --secret-file "$HM_SECRET" --deliver-to "$u" --interval 0 "$@" >/dev/null; }
copies_ok() {   # copies_ok USER EXPECTED-COUNT: every Message-ID once, COUNT in all
    local c; c=$(hm_copies "$1")
    [ "$(awk '$1 != 1' <<<"$c" | grep -c .)" = 0 ] && [ "$(grep -c . <<<"$c")" = "$2" ] ||
        { tap_diag "copies of $1: $(awk '{n+=$1} END {print n+0}' <<<"$c") in $(grep -c . <<<"$c") ids, want $2 once each"; return 1; }
}
# imap_counters MARK: prim's IMAP sessions that ended after MARK, summed:
# "sessions=N body_count=.. body_bytes=.. hdr_count=.. hdr_bytes=.. expunged=.."
imap_counters() {
    tail -n +"$(( $1 + 1 ))" "$H_DIR/dovecot/dovecot.log" | grep -F "imap($HM_PRIM_USER)" |
        grep -F ' hmi ' | awk '
        { n++; sub(/.* hmi /, ""); for (i = 1; i <= NF; i++) { split($i, kv, "="); s[kv[1]] += kv[2] } }
        END { printf "sessions=%d body_count=%d body_bytes=%d hdr_count=%d hdr_bytes=%d expunged=%d\n",
              n, s["body_count"], s["body_bytes"], s["hdr_count"], s["hdr_bytes"], s["expunged"] }'
}
# sync_counted USER: a sync, and prim's IMAP counters of it in C[] (mirrord's
# session is the only one of prim between the mark and its logout line)
sync_counted() {
    local mark end; mark=$(hm_log_mark)
    hm_sync "$1" || { tap_diag "$(cat "$H_DIR/hm-last-sync")"; return 1; }
    end=$((SECONDS + 10))
    until [ "$(imap_counters "$mark" | cut -d' ' -f1)" != sessions=0 ] || [ $SECONDS -ge $end ]; do
        sleep 0.05
    done
    read -r -a C <<<"$(imap_counters "$mark")"
    tap_diag "primary's IMAP counters: ${C[*]}"
}
# imap_client PY-CODE: a real IMAP client on prim's INBOX (read-write).
imap_client() {
    HM_PORT_IMAP=$POSTLINK_IMAP_PORT python3 -c "
import imaplib, os
m = imaplib.IMAP4('127.0.0.1', int(os.environ['HM_PORT_IMAP']), timeout=30)
m.login(os.environ['HM_PRIM_USER'], os.environ['HM_PRIM_PASS'])
m.select('INBOX')
$1
m.logout()"
}
# same_bytes USER: each copy in USER's maildir has the primary's header
# fields and exactly its body (line ends aside).
same_bytes() {
    python3 - "$(h__maildir "$HM_PRIM_USER")" "$(h__maildir "$1")" <<'PY'
import glob, re, sys
def split(path):
    d = open(path, "rb").read().replace(b"\r\n", b"\n")
    h, _, b = d.partition(b"\n\n")
    mid = re.search(rb"(?im)^message-id:\s*(\S+)", h)
    return (mid.group(1) if mid else None), h.split(b"\n"), b
prim = {}
for f in glob.glob(sys.argv[1] + "/cur/*") + glob.glob(sys.argv[1] + "/new/*"):
    mid, h, b = split(f)
    prim[mid] = (h, b)
bad = n = 0
for f in glob.glob(sys.argv[2] + "/cur/*") + glob.glob(sys.argv[2] + "/new/*"):
    mid, h, b = split(f)
    n += 1
    if mid not in prim or prim[mid][1] != b or any(l not in h for l in prim[mid][0]):
        bad += 1
        print("# copy %s of %s differs from the primary's" % (f, mid))
print("# %d copies compared, %d differ" % (n, bad))
sys.exit(1 if bad or n == 0 else 0)
PY
}

# add_tricky: one more message whose body holds what a response reader
# could mistake for the server's lines (as libcurl's custom requests do):
# untagged FETCH lines, our tags with OK, a literal marker, a ")" alone,
# and a 990-byte line (Postfix folds longer ones on the way to the mailbox).
add_tricky() {
    python3 - "$(h__maildir "$HM_PRIM_USER")" "$(id -u postlink)" "$(id -g postlink)" <<'PY'
import os, sys
md, uid, gid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
msg = (b"From: <tricky@remote.test>\nTo: <prim@postlink.test>\nSubject: tricky\n"
       b"Message-ID: <tricky.1@primary.test>\n\n"
       b"* 9 FETCH (UID 99 RFC822.SIZE 1 BODY[] {3}\nabc\n)\npl3 OK fake\npl4 OK fake\n"
       b"A003 OK fake\n* 1 EXISTS\n* OK [UIDVALIDITY 7] fake\nend {5}\n)\n"
       + b"x" * 990 + b"\nlast line caf\xe9\n")
f = os.path.join(md, "tmp", "1800000000.Mtricky.primary")
open(f, "wb").write(msg)
os.chown(f, uid, gid)
os.rename(f, os.path.join(md, "new", "1800000000.Mtricky.primary"))
PY
}

# ---- the first sync copies everything, and the primary is unchanged ----
hm_fill 11 2000 30000
add_tricky                     # UID 12
imap_client "m.uid('STORE', '4,5', '+FLAGS', '(\\\\Seen)')"   # read before: stays read
hm_snapshot "$H_DIR/snap0"
tap_check "two messages are \\Seen on the primary, ten are not" \
    test "$(grep -c '\\Seen' "$H_DIR/snap0")" = 2
tap_check "mirror add alice with an imap:// primary (--plain: loopback)" imap_add "$A" --mode delete --plain
tap_check "mirror list shows the IMAP primary" \
    sh -c '"$POSTLINKCTL" mirror list | grep -qF "$0 as"' "$PRIM"
tap_check "the first sync succeeds" sync_counted "$A"
hm_wait_queue_empty
tap_check "alice has each of the 12 messages once" copies_ok alice 12
tap_check "each copy has the primary's headers and exactly its body (the tricky one too)" same_bytes alice
tap_check "the primary sent 12 bodies, no headers alone, expunged nothing" \
    test "${C[1]}" = body_count=12 -a "${C[3]}" = hdr_count=0 -a "${C[5]}" = expunged=0
hm_snapshot "$H_DIR/snap1"
tap_check "the primary is unchanged (UIDVALIDITY, UIDs, flags, digests)" \
    hm_same_snapshot "$H_DIR/snap0" "$H_DIR/snap1"
j=$("$POSTLINKCTL" mirror status "$A" --json)
tap_check "status: ok, 12 listed, 12 fetched, 12 held, listing complete" \
    jq_true '.sync.ok and .sync.listed == 12 and .sync.fetched == 12 and .ids.held == 12 and .sync.complete' "$j"
uv=$(sed -n 's/^UIDVALIDITY //p' "$H_DIR/snap0")
tap_check "the ids are UIDVALIDITY.UID (the log names them)" \
    grep -qF "mirror $A: $uv.1 (" "$H_SYNC/mirrord.log"

# ---- new mail: only the new UIDs are fetched -------------------------------
hm_fill 3 2000 5000
tap_check "an incremental sync succeeds" sync_counted "$A"
hm_wait_queue_empty
want=$(awk '$2 ~ /^<hm-2\./ {s += $4} END {print s}' "$H_DIR/hm-manifest")
tap_check "only the 3 new messages were fetched ($want bytes)" \
    test "${C[1]}" = body_count=3 -a "${C[2]}" = "body_bytes=$want"
tap_check "alice has 15 messages, each once" copies_ok alice 15
tap_check "a sync with nothing new succeeds" sync_counted "$A"
tap_check "and fetches nothing (body_count=0)" test "${C[1]}" = body_count=0

# ---- a real client expunges 2 on the primary: withdrawn --------------------
gone=$(awk '$1 <= 2 {print $2}' "$H_DIR/hm-manifest")
imap_client "m.uid('STORE', '1:2', '+FLAGS', '(\\\\Deleted)'); m.expunge()"
tap_check "alice's sync after 2 were expunged on the primary" sync_counted "$A"
j=$("$POSTLINKCTL" mirror status "$A" --json)
tap_check "status: 2 withdrawn, 0 fetched, 2 tombstones, 13 held" \
    jq_true '.sync.withdrawn == 2 and .sync.fetched == 0 and .ids.tombstones == 2 and .ids.held == 13' "$j"
left=$(hm_copies alice)
n=0; for m in $gone; do grep -qF -- " $m" <<<"$left" && n=$((n + 1)); done
tap_check "their copies are gone from alice's mailbox" test "$n" = 0
tap_check "the other 13 stay" copies_ok alice 13

# ---- UIDVALIDITY changes: re-mapped by Message-ID and size, nothing fetched
hm_snapshot "$H_DIR/snap2"
md=$(h__maildir "$HM_PRIM_USER")
rm -f "$md"/dovecot-uidlist "$md"/dovecot.index* "$md"/dovecot.list.index* "$md"/dovecot-uidvalidity*
hm_snapshot "$H_DIR/snap3"
uv2=$(sed -n 's/^UIDVALIDITY //p' "$H_DIR/snap3")
tap_check "the primary's UIDVALIDITY changed ($uv -> $uv2), the 13 messages stay" \
    sh -c 'test "$0" != "$1" && test "$(grep -c . "$2")" = 14' "$uv" "$uv2" "$H_DIR/snap3"
tap_check "the sync after the change" sync_counted "$A"
j=$("$POSTLINKCTL" mirror status "$A" --json)
tap_diag "$(jq -c '{remapped: .sync.remapped, fetched: .sync.fetched, withdrawn: .sync.withdrawn, ids: .ids}' <<<"$j")"
tap_check "status: 13 re-mapped, none fetched, none withdrawn" \
    jq_true '.sync.remapped == 13 and .sync.fetched == 0 and .sync.withdrawn == 0 and .ids.held == 13' "$j"
tap_check "mirror status (text) reports the re-mapped count" \
    sh -c '"$POSTLINKCTL" mirror status "$0" | grep -q "remapped=13"' "$A"
tap_check "only headers were read (body_count=0, hdr_count=13)" \
    test "${C[1]}" = body_count=0 -a "${C[3]}" = hdr_count=13
tap_check "alice still has 13 messages, each once" copies_ok alice 13
tap_check "the next sync" sync_counted "$A"
tap_check "needs no re-mapping and reads nothing" test "${C[1]}" = body_count=0 -a "${C[3]}" = hdr_count=0

# ---- imaps: certificates ------------------------------------------------------
C2=carol@$POSTLINK_DOMAIN
PRIM=imaps://127.0.0.1:$IMAPS_PORT
imap_add "$C2" --tls-name "$HM_TLS_NAME"
tap_check "imaps with a self-signed certificate and no CA file fails" \
    sh -c '! "$POSTLINKCTL" mirror sync "$0" --wait 30 >/dev/null' "$C2"
err=$(hm_status_field "$C2" .sync.error)
tap_diag "error: $err"
tap_check "with the reason in mirror status" grep -q "certificate" <<<"$err"
imap_add "$C2" --tls-name expired.$POSTLINK_DOMAIN --ca-file "$HM_EXPIRED_CA"
tap_check "an expired certificate fails" \
    sh -c '! "$POSTLINKCTL" mirror sync "$0" --wait 30 >/dev/null' "$C2"
tap_check "and says expired" sh -c 'test -n "$0" && grep -q "expired" <<EOF
$("$POSTLINKCTL" mirror status "$0" --json | jq -r .sync.error)
EOF' "$C2"
imap_add "$C2" --tls-name "$HM_TLS_NAME" --ca-file "$HM_CA"
tap_check "imaps with the right CA file syncs" hm_sync "$C2"
hm_wait_queue_empty
tap_check "carol has the 13 messages" copies_ok carol 13
PRIM=imap://127.0.0.1:$POSTLINK_IMAP_PORT
imap_add "$C2" --tls-name "$HM_TLS_NAME" --ca-file "$HM_CA"
tap_check "imap:// with the CA file syncs (STARTTLS, without --plain)" hm_sync "$C2"
tap_check "over STARTTLS (Dovecot's login line says TLS)" \
    sh -c 'grep "imap-login: Info: Login: user=<$0>" "$1" | tail -1 | grep -qF ", TLS,"' \
    "$HM_PRIM_USER" "$H_DIR/dovecot/dovecot.log"

# ---- on the wire: only commands that cannot change the primary ------------
WIRE_PORT=$(h_free_port)
h_spawn socat "$H_DIR/imap-wire.log" socat -v "TCP-LISTEN:$WIRE_PORT,bind=127.0.0.1,reuseaddr,fork" \
    "TCP:127.0.0.1:$POSTLINK_IMAP_PORT"
h_wait_port "$WIRE_PORT" 10 "$H_LAST_PID"
B=bob@$POSTLINK_DOMAIN
PRIM=imap://127.0.0.1:$WIRE_PORT
imap_add "$B" --mode mark --plain
tap_check "bob's first sync (through a recording proxy)" hm_sync "$B"
hm_wait_queue_empty
tap_check "bob has the 13 messages" copies_ok bob 13
# the client's command lines: a tag, then a command name (not a status)
# (socat -v shows a CR as the two characters \r)
sed 's/\\r$//' "$H_DIR/imap-wire.log" | grep -aE '^(pl|A)[0-9]+ [A-Za-z]' |
    grep -avE '^[^ ]+ (OK|NO|BAD)( |$)' >"$H_DIR/imap-cmds"
tap_diag "commands: $(cut -d' ' -f2- "$H_DIR/imap-cmds" | sed 's/^\(AUTHENTICATE [A-Z]*\).*/\1 .../; s/ [0-9,:*]* (/ ... (/' | sort | uniq -c | tr -s ' \n' ' ')"
tap_check "the mirror sent EXAMINE INBOX, and UID FETCH with BODY.PEEK[] for 13" \
    sh -c 'grep -q "^pl[0-9]* EXAMINE INBOX$" "$0" && test "$(grep -o "[0-9,]* (UID BODY.PEEK\[\])$" "$0" | tr , "\n" | grep -c .)" = 13' \
    "$H_DIR/imap-cmds"
tap_check "and nothing else that could change the primary (no SELECT, BODY[], RFC822, STORE, EXPUNGE, COPY)" \
    sh -c '! cut -d" " -f2- "$0" | grep -vE "^(CAPABILITY|AUTHENTICATE PLAIN [A-Za-z0-9+/=]+|EXAMINE INBOX|UID FETCH [0-9,:*]+ \((UID RFC822.SIZE|UID BODY.PEEK\[\]|UID BODY.PEEK\[HEADER\])\)|LOGOUT)$"' \
    "$H_DIR/imap-cmds"
PRIM=imap://127.0.0.1:$POSTLINK_IMAP_PORT
tap_check "postlinkctl refuses --retr for an IMAP primary" \
    sh -c '! "$POSTLINKCTL" mirror add "$0" --replace --primary "$1" --login x --secret-file "$2" --deliver-to "$0" --retr 2>/dev/null' \
    "$C2" "$PRIM" "$HM_SECRET"

# ---- a wrong password -------------------------------------------------------
BADPW=bad-secret-$RANDOM
printf '%s\n' "$BADPW" >"$H_DIR/hm-secret/bad" && chown postlink "$H_DIR/hm-secret/bad" && chmod 0600 "$H_DIR/hm-secret/bad"
D=dave@$POSTLINK_DOMAIN
"$POSTLINKCTL" mirror add "$D" --primary "$PRIM" --plain --login "$HM_PRIM_USER" \
    --secret-file "$H_DIR/hm-secret/bad" --deliver-to "$D" --interval 60 >/dev/null
tap_check "a wrong password fails the sync" sh -c '! "$POSTLINKCTL" mirror sync "$0" --wait 30 >/dev/null' "$D"
j=$("$POSTLINKCTL" mirror status "$D" --json)
tap_diag "error: $(jq -r .sync.error <<<"$j")"
tap_check "status: auth_failed, the login refused" \
    jq_true '(.sync.auth_failed) and (.sync.error | test("refused the login"))' "$j"
ps axww >"$H_DIR/ps.txt"
tap_check "no password is in a log, or in ps output" \
    env P1="$BADPW" P2="$HM_PRIM_PASS" sh -c '! grep -qsF -e "$P1" -e "$P2" "$H_SYNC"/*.log "$H_DIR/ps.txt"'

# ---- a primary that breaks off in a message, or lies about a size ------------
E=erin@$POSTLINK_DOMAIN FD=$H_DIR/fake-imap FS=$H_DIR/fake-imap.json
mkdir -p "$FD"
mkmsg() { python3 -c 'import sys
n = sys.argv[2]
open(sys.argv[1] + "/" + n, "w").write("From: <f@remote.test>\nSubject: fake %s\nMessage-ID: <fake.%s@fake.test>\n\n%s" % (n, n, "fake body line\n" * 200))' "$FD" "$1"; }
for i in 1 2 3; do mkmsg $i; done
echo '{"drop_in": "2:500"}' >"$FS"
FAKE_PORT=$(h_free_port)
h_spawn imap-peer "$H_DIR/imap-peer.log" python3 "$abs_top_srcdir/tests/fakes/imap-peer.py" \
    "$FAKE_PORT" "$FD" --script "$FS"
h_wait_port "$FAKE_PORT" 10 "$H_LAST_PID"
PRIM=imap://127.0.0.1:$FAKE_PORT
imap_add "$E"
tap_check "imap:// to a primary that offers no STARTTLS fails (no --plain)" \
    sh -c '! "$POSTLINKCTL" mirror sync "$0" --wait 30 >/dev/null' "$E"
tap_check "and says so" jq_true '.sync.error | test("does not offer STARTTLS")' \
    "$("$POSTLINKCTL" mirror status "$E" --json)"
tap_check "no login was sent in the clear" sh -c '! grep -q "AUTHENTICATE\|LOGIN" "$0"' "$H_DIR/imap-peer.log"
imap_add "$E" --plain
tap_check "a sync whose connection breaks off in the middle of message 2 fails" \
    sh -c '! "$POSTLINKCTL" mirror sync "$0" --wait 30 >/dev/null' "$E"
hm_wait_queue_empty
j=$("$POSTLINKCTL" mirror status "$E" --json)
tap_diag "error: $(jq -r .sync.error <<<"$j")"
tap_check "status says the connection was closed; 1 held, 2 pending" \
    jq_true '(.sync.error | test("closed")) and .ids.held == 1 and .ids.pending == 2' "$j"
tap_check "erin has message 1 only: nothing of message 2 was handed over" copies_ok erin 1
echo '{}' >"$FS"
tap_check "the next sync, the primary behaving" hm_sync "$E"
hm_wait_queue_empty
tap_check "it fetched the 2 pending ones" jq_true '.sync.fetched == 2 and .ids.held == 3' \
    "$("$POSTLINKCTL" mirror status "$E" --json)"
tap_check "erin has the 3 messages, each once" copies_ok erin 3
mkmsg 4
echo '{"size_lie": 4}' >"$FS"
tap_check "a message whose bytes are not its RFC822.SIZE fails the sync" \
    sh -c '! "$POSTLINKCTL" mirror sync "$0" --wait 30 >/dev/null' "$E"
j=$("$POSTLINKCTL" mirror status "$E" --json)
tap_diag "error: $(jq -r .sync.error <<<"$j")"
tap_check "the error gives both sizes; the message stays pending" \
    jq_true '(.sync.error | test("got [0-9]+ bytes")) and .ids.pending == 1' "$j"
hm_wait_queue_empty
tap_check "and it was not handed over" copies_ok erin 3
echo '{}' >"$FS"
tap_check "once the size is right it is fetched" hm_sync "$E"
hm_wait_queue_empty
tap_check "erin has the 4 messages, each once" copies_ok erin 4
tap_check "the fake primary saw no command that could change a mailbox or set \\Seen" \
    sh -c 'grep -q "^cmd .*EXAMINE INBOX" "$0" && ! grep -q VIOLATION "$0"' "$H_DIR/imap-peer.log"

hm_snapshot "$H_DIR/snap4"
"$POSTLINKCTL" mirror sync "$A" --wait 30 >/dev/null
hm_snapshot "$H_DIR/snap5"
tap_check "a sync changes nothing on the primary" hm_same_snapshot "$H_DIR/snap4" "$H_DIR/snap5"
tap_check "the \\Seen flags of the primary are as a client left them (2 of 13)" \
    test "$(grep -c '\\Seen' "$H_DIR/snap5")" = 2
tap_check "postlink-mirrord is still running" h__alive "$HM_MIRRORD_PID"
tap_done
