#!/usr/bin/env bash
# t_mirror_faults.sh -- postlink-mirrord against a primary that misbehaves
# (tests/fakes/pop3-peer.py: Dovecot never does), through the real private
# Postfix into the harness's Dovecot: a connection dropped mid-message, a
# TOP shorter than LIST, malformed and duplicate UIDL lines, a 50 MB
# message (delivered; over mirror_max_message; refused by Postfix), CAPA
# EXPIRE 0, a locked mailbox and a wrong password, a primary that hangs
# mid-listing, PIPELINING on and off, mirror_missing_syncs = 2.  Each case
# has its own destination user and its own fake primary; what is checked
# is what a user or admin sees: the copies in the destination maildir,
# "postlinkctl mirror status --json" and mirrord.log.
set -u
. "${abs_top_srcdir:-.}/tests/integration/tap.sh"
. "$abs_top_srcdir/tests/harness/harness.sh"
. "$abs_top_srcdir/tests/harness/sync.sh"
. "$abs_top_srcdir/tests/harness/mirror.sh"

FAKE=$abs_top_srcdir/tests/fakes/pop3-peer.py
BIG=52428800                                  # 50 MiB, as LIST counts it
H_USERS="$H_USERS f1 f2 f3 f4 f4c f4b f5 f6 f7 f8p f8n f9 f10 f11 f12 f13 f14"
HM_CONF_EXTRA="mirror_timeout = 2s"           # case 7: a hang costs 2 s
H_POSTFIX_MAIN_EXTRA="message_size_limit = 60000000"   # case 4: 50 MB through Postfix

h_init || exit 1
hm_setup || { tap_fail "harness starts"; tap_done; exit 1; }
HM_MASTER_PASS=master-$RANDOM$RANDOM
h_dovecot_master_user "$HM_MASTER_PASS"
h_start_sink && h_start_dovecot && hm_mirror_setup && hs_setup && h_start_postfix &&
    hm_start_guard && hm_start_mirrord || { tap_fail "harness starts"; tap_done; exit 1; }
tap_ok "harness with postlink-mirrord starts"
D=$POSTLINK_DOMAIN
LOG=$H_SYNC/mirrord.log

# ---- helpers ------------------------------------------------------------

# fk_start CASE [OPTIONS...]: a fake primary for CASE (mailbox
# $H_DIR/fk-CASE/mb, script $H_DIR/fk-CASE/script.json, log
# $H_DIR/fk-CASE/log); its port in FK_PORT_CASE.
fk_start() {
    local c=$1 d=$H_DIR/fk-$1 port; shift
    mkdir -p "$d/mb" && echo '{}' >"$d/script.json" && port=$(h_free_port) || return 1
    h_spawn "fake-$c" "$d/log" python3 "$FAKE" "$port" "$d/mb" --script "$d/script.json" \
        --user "$HM_PRIM_USER" --password "$HM_PRIM_PASS" "$@"
    printf -v "FK_PORT_$c" %s "$port"
    hs_wait_log "$d/log" "listening on 127.0.0.1:$port" 10
}
# fk_script CASE JSON: the faults of CASE's next sessions.
fk_script() { printf '%s\n' "$2" >"$H_DIR/fk-$1/script.json"; }
# fk_msgs CASE FROM TO [LINES]: messages mFROM..mTO (UIDL = file name),
# Message-ID <fk-CASE.N@fake.test>, LINES body lines (default 40), the
# last one "end of fk message CASE.N" (a cut-off copy lacks it).
fk_msgs() {
    local c=$1 i k
    for i in $(seq "$2" "$3"); do
        {
            printf 'From: <sender@remote.test>\nTo: <prim@%s>\nSubject: fk %s %d\n' "$D" "$c" "$i"
            printf 'Message-ID: <fk-%s.%d@fake.test>\nDate: Thu, 01 Jan 2026 00:00:00 +0000\n\n' "$c" "$i"
            for k in $(seq "${4:-40}"); do printf 'line %03d of message %d ........................................\n' "$k" "$i"; done
            printf '.a line that starts with a dot\nend of fk message %s.%d\n' "$c" "$i"
        } >"$H_DIR/fk-$c/mb/$(printf 'm%02d' "$i")"
    done
}
fk_rm() { local c=$1; shift; for i in "$@"; do rm -f "$H_DIR/fk-$c/mb/$(printf 'm%02d' "$i")"; done; }
fk_log() { cat "$H_DIR/fk-$1/log"; }

# fk_add USER CASE [OPTIONS...]: a fresh mirror account USER@D of CASE's
# fake, copies to USER@D, on demand only.
fk_add() {
    local u=$1@$D port; eval "port=\$FK_PORT_$2"; shift 2
    "$POSTLINKCTL" mirror del "$u" >/dev/null 2>&1
    "$POSTLINKCTL" mirror add "$u" --primary "pop3://127.0.0.1:$port" --plain --login "$HM_PRIM_USER" \
        --secret-file "$HM_SECRET" --deliver-to "$u" --interval 0 "$@" >/dev/null
}
# (FK_KEEP_ACCOUNTS=1: left in the store, to look at after a failure)
fk_del() { [ "${FK_KEEP_ACCOUNTS-}" = 1 ] || "$POSTLINKCTL" mirror del "$1@$D" >/dev/null 2>&1; }
# fk_sync USER: one sync, waited for; its exit status (0: the sync was ok).
fk_sync() { "$POSTLINKCTL" mirror sync "$1@$D" --wait 30 >"$H_DIR/fk-last-sync" 2>&1; }
# st USER: the status JSON in J.
st() { J=$("$POSTLINKCTL" mirror status "$1@$D" --json); }
check_st() {   # check_st DESCRIPTION JQ: on J, with J shown when it fails
    jq_true "$2" "$J" && { tap_ok "$1"; return 0; }
    tap_fail "$1"; tap_diag "status: $(jq -c '{sync, ids}' <<<"$J")"; return 1
}

# copies_are USER CASE N...: USER's maildir has exactly one copy of each of
# CASE's messages N..., and nothing else.
copies_are() {
    local u=$1 c=$2 want got; shift 2
    want=$(for n in "$@"; do echo "1 <fk-$c.$n@fake.test>"; done | sort)
    got=$(hm_copies "$u" | sort)
    [ "$got" = "$want" ] || { tap_diag "copies of $u:" "${got:-(none)}" "wanted:" "$want"; return 1; }
}
# whole_copies USER: every copy in USER's maildir ends with its "end of fk
# message" line (nothing half-delivered).
whole_copies() {
    local f bad=0
    for f in "$(h__maildir "$1")"/new/* "$(h__maildir "$1")"/cur/*; do
        [ -f "$f" ] || continue
        tail -n 1 "$f" | grep -q '^end of fk message ' || { tap_diag "cut-off copy: $f"; bad=1; }
    done
    return $bad
}
# log_since MARK: mirrord.log after line MARK.
log_mark() { wc -l <"$LOG" | tr -d ' '; }
log_since() { tail -n +"$(( $1 + 1 ))" "$LOG"; }
log_has() { log_since "$1" | grep -q -- "$2" || { tap_diag "not in mirrord.log: $2"; return 1; }; }

# ---- 1. the connection drops in the middle of message 3 of 5 --------------
fk_start c1 && fk_msgs c1 1 5 60 && fk_add f1 c1
fk_script c1 '{"drop_in": "3:700"}'
m=$(log_mark)
tap_check "1: the sync with the drop fails" sh -c '! "$0" mirror sync "$1" --wait 30 >/dev/null' "$POSTLINKCTL" "f1@$D"
hm_wait_queue_empty
tap_check "1: the fake dropped the connection in message 3" grep -q 'dropped .*in message 3 after 700 bytes' "$H_DIR/fk-c1/log"
tap_check "1: messages 1 and 2 are there once, no copy of 3" copies_are f1 c1 1 2
tap_check "1: nothing half-delivered" whole_copies f1
st f1
check_st "1: status: not ok, the error names the broken connection in message 3" \
    '(.sync.ok | not) and (.sync.error | test("closed") and test("message 3")) and .sync.fetched == 2'
check_st "1: ids 3-5 stay pending, 1-2 held" '.ids.held == 2 and .ids.pending == 3'
tap_check "1: the log says the sync failed" log_has "$m" "mirror f1@$D: sync failed (1 in a row"
tap_check "1: the log does not call the dropped connection a refusal" \
    sh -c '! tail -n +"$(( $1 + 1 ))" "$0" | grep -q "refused to send m03"' "$LOG" "$m"
fk_script c1 '{}'
tap_check "1: the next sync (no fault) succeeds" fk_sync f1
hm_wait_queue_empty
tap_check "1: now 1-5, each once" copies_are f1 c1 1 2 3 4 5
tap_check "1: every copy whole" whole_copies f1
st f1
check_st "1: status: ok, 3 fetched, 5 held, none pending" \
    '.sync.ok and .sync.fetched == 3 and .ids.held == 5 and .ids.pending == 0'
tap_check "1: message 3 handed over under the token recorded before (logged)" \
    log_has "$m" "mirror f1@$D: m03 .*pending since an interrupted sync"
fk_del f1

# ---- 2. TOP sends fewer bytes than LIST says -------------------------------
fk_start c2 && fk_msgs c2 1 4 && fk_add f2 c2
fk_script c2 '{"short_top": 2}'
m=$(log_mark)
tap_check "2: a sync with a short TOP fails" sh -c '! "$0" mirror sync "$1" --wait 30 >/dev/null' "$POSTLINKCTL" "f2@$D"
hm_wait_queue_empty
tap_check "2: messages 1, 3 and 4 delivered once, 2 not" copies_are f2 c2 1 3 4
st f2
check_st "2: the error names m02 and the size mismatch" \
    '(.sync.ok | not) and (.sync.error | test("m02") and test("LIST said")) and .sync.fetched == 3 and .sync.failed >= 1'
check_st "2: m02 stays pending" '.ids.pending == 1 and .ids.held == 3'
tap_check "2: the log names it" log_has "$m" "m02 (message 2): got [0-9]* bytes, LIST said [0-9]*"
fk_del f2

# ---- 3. malformed and duplicate UIDL lines: incomplete, nothing withdrawn ----
fk_start c3 && fk_msgs c3 1 5 && fk_add f3 c3
tap_check "3: the first sync (5 messages)" fk_sync f3
hm_wait_queue_empty
tap_check "3: 5 copies" copies_are f3 c3 1 2 3 4 5
# now m02 and m03 vanish; m06-m11 arrive: listed as 1 m01, 2 m04, 3 m05,
# 4 m06 (a control character), 5 m07 (71 characters), 6 m08 (no id),
# 7 m09, 8 m10 listed as m09 too (a duplicate), 9 m11 (good)
fk_rm c3 2 3 && fk_msgs c3 6 11
fk_script c3 '{"uidl_bad": ["4:ctl", "5:long", "6:missing"], "uidl_dup": ["8:7"]}'
m=$(log_mark)
fk_sync f3
hm_wait_queue_empty
st f3
check_st "3: the listing is incomplete" '.sync.complete == false and .sync.bad_lines >= 5'
check_st "3: only the good new id (m11) fetched" '.sync.fetched == 1'
check_st "3: nothing withdrawn or counted missing although m02 and m03 vanished" \
    '.sync.withdrawn == 0 and .sync.missing == 0 and .ids.tombstones == 0'
tap_check "3: copies: the 5 old ones (m02, m03 kept) and m11, none of m06-m10" copies_are f3 c3 1 2 3 4 5 11
tap_check "3: the log names a bad listing line" log_has "$m" "the primary's listing has a bad line"
tap_check "3: the log names the duplicate id" log_has "$m" 'lists id "m09" twice: neither copy is fetched'
tap_check "3: status text says the listing was incomplete" \
    sh -c '"$0" mirror status "$1" | grep -q "listing incomplete: nothing counted as read"' "$POSTLINKCTL" "f3@$D"
fk_script c3 '{}'
tap_check "3: a clean listing afterwards syncs" fk_sync f3
hm_wait_queue_empty
st f3
check_st "3: then m02, m03 withdrawn and m06-m10 fetched" \
    '.sync.complete and .sync.withdrawn == 2 and .sync.fetched == 5'
tap_check "3: copies 1, 4-11 once each" copies_are f3 c3 1 4 5 6 7 8 9 10 11
fk_del f3

# ---- 5. CAPA EXPIRE 0: a vanished id expired, not read ------------------
fk_start c5 --expire 0 && fk_msgs c5 1 3 && fk_add f5 c5
tap_check "5: the first sync" fk_sync f5
hm_wait_queue_empty
fk_rm c5 2
tap_check "5: the sync after m02 vanished" fk_sync f5
st f5
check_st "5: status: expire_days 0, m02 expired, not withdrawn" \
    '.sync.expire_days == 0 and .sync.expired == 1 and .sync.withdrawn == 0 and .ids.tombstones == 1'
tap_check "5: the copy of m02 stays" copies_are f5 c5 1 2 3
tap_check "5: status text shows the EXPIRE note" \
    sh -c '"$0" mirror status "$1" | grep -q "note: *the primary announces EXPIRE 0"' "$POSTLINKCTL" "f5@$D"
fk_del f5

# ---- 6. a locked mailbox is not a wrong password --------------------------
fk_start c6 && fk_msgs c6 1 2 && fk_add f6 c6
fk_script c6 '{"login_err": "[IN-USE] mailbox locked by another session"}'
tap_check "6: a sync against a locked mailbox fails" sh -c '! "$0" mirror sync "$1" --wait 30 >/dev/null' "$POSTLINKCTL" "f6@$D"
st f6
check_st "6: [IN-USE]: not auth_failed, the error has the server's reason" \
    '(.sync.auth_failed | not) and (.sync.error | test("locked"))'
check_st "6: [IN-USE]: retried with the normal backoff (30 s after the first failure)" \
    '.sync.fails == 1 and (.sync.next - .sync.last) >= 20 and (.sync.next - .sync.last) <= 31'
tap_check "6: no login ALERT in the status text" \
    sh -c '! "$0" mirror status "$1" | grep -q "refused the login: fix the secret"' "$POSTLINKCTL" "f6@$D"
fk_script c6 '{"login_err": "[AUTH] invalid password"}'
tap_check "6: a sync with the login refused [AUTH] fails" sh -c '! "$0" mirror sync "$1" --wait 30 >/dev/null' "$POSTLINKCTL" "f6@$D"
st f6
check_st "6: [AUTH]: auth_failed, the next try hours away" \
    '.sync.auth_failed and (.sync.next - .sync.last) >= 3600'
tap_check "6: nothing was delivered" test -z "$(hm_copies f6)"
fk_del f6

# ---- 7. the primary hangs mid-listing -------------------------------------
fk_start c7 && fk_msgs c7 1 4 && fk_add f7 c7
fk_script c7 '{"hang_uidl": 2}'
t0=$(h__ms)
tap_check "7: a sync against a hanging primary fails" sh -c '! "$0" mirror sync "$1" --wait 30 >/dev/null' "$POSTLINKCTL" "f7@$D"
t1=$(h__ms)
tap_check "7: the fake hung in UIDL" grep -q 'hang .*in UIDL after 2 lines' "$H_DIR/fk-c7/log"
st f7
check_st "7: the error mentions the timeout in the listing" \
    '(.sync.ok | not) and (.sync.error | test("timeout")) and (.sync.error | test("UIDL"))'
check_st "7: after about mirror_timeout (2 s), not the default 60 s" '.sync.seconds >= 1.5 and .sync.seconds < 10'
tap_diag "7: the failing sync took $((t1 - t0)) ms"
check_st "7: the error does not blame missing UIDL support for a timeout" \
    '.sync.error | test("must support UIDL") | not'
tap_check "7: postlink-mirrord is still running" h__alive "$HM_MIRRORD_PID"
fk_script c7 '{}'
tap_check "7: the next sync works" fk_sync f7
hm_wait_queue_empty
tap_check "7: 4 copies" copies_are f7 c7 1 2 3 4
fk_del f7

# ---- 8. PIPELINING announced and not ---------------------------------------
fk_start c8p --pipelining && fk_msgs c8p 1 5 && fk_add f8p c8p
fk_start c8n && fk_msgs c8n 1 5 && fk_add f8n c8n
tap_check "8: sync with PIPELINING" fk_sync f8p
tap_check "8: sync without PIPELINING" fk_sync f8n
hm_wait_queue_empty
tap_check "8: with PIPELINING all 5 once" copies_are f8p c8p 1 2 3 4 5
tap_check "8: without PIPELINING all 5 once" copies_are f8n c8n 1 2 3 4 5
first_top() { grep -m1 'cmd [0-9]*: TOP ' "$H_DIR/fk-$1/log" | sed 's/.*(outstanding \([0-9]*\))/\1/'; }
n=$(first_top c8p)
tap_check "8: with PIPELINING the fake had several TOPs before answering the first (saw ${n:-none})" \
    test "${n:-0}" -ge 2
tap_check "8: without PIPELINING never more than one command outstanding" \
    sh -c '! grep -q "^max-outstanding [0-9]*: [2-9]" "$0"' "$H_DIR/fk-c8n/log"
fk_del f8p; fk_del f8n

# ---- 4. a 50 MB message ------------------------------------------------------
fk_start c4 && fk_msgs c4 1 1 && echo "$BIG" >"$H_DIR/fk-c4/mb/m02.gen"
# big_copy USER: the bytes of USER's copy of the big message after the
# X-Postlink-Mirror line (what the primary sent), CRLF line ends, counted.
big_copy() {
    local f; f=$(grep -l -m1 '^Message-ID: <gen-m02@fake.test>' "$(h__maildir "$1")"/new/* 2>/dev/null | head -1)
    [ -n "$f" ] || { echo "none"; return; }
    python3 - "$f" <<'PY'
import sys
b = open(sys.argv[1], "rb").read().replace(b"\r\n", b"\n")
i = b.index(b"\nX-Postlink-Mirror:")
body = b[b.index(b"\n", i + 1) + 1:]
print(len(body) + body.count(b"\n"))
PY
}
fk_add f4 c4
m=$(log_mark); t0=$(h__ms)
tap_check "4: a sync with a 50 MB message succeeds" fk_sync f4
hm_wait_queue_empty 60
t1=$(h__ms); tap_diag "4: 50 MB mirrored and delivered in $((t1 - t0)) ms"
got=$(hm_copies f4 | sort | tr '\n' ' ')
tap_check "4: the 50 MB message and m01 delivered once each" \
    test "$got" = "1 <fk-c4.1@fake.test> 1 <gen-m02@fake.test> "
size=$(big_copy f4)
tap_check "4: its size at the destination is LIST's $BIG (after the mirror's header line), got $size" \
    test "$size" = "$BIG"
st f4
check_st "4: status: ok, 2 fetched" '.sync.ok and .sync.fetched == 2 and .ids.held == 2'
tap_check "4: the log has the copy with its size" log_has "$m" "mirror f4@$D: m02 ($BIG bytes) -> f4@$D"
fk_del f4

# Postfix with its default message_size_limit (10240000) refuses the copy:
# recorded as refused for good (seen), logged, not fetched again.
H_POSTFIX_MAIN_EXTRA=${H_POSTFIX_MAIN_EXTRA/message_size_limit = 60000000/}
tap_check "4: Postfix reloaded with its default message_size_limit" h_postfix_reload
fk_add f4c c4
m=$(log_mark)
fk_sync f4c
hm_wait_queue_empty
tap_check "4: with Postfix refusing it, only m01 delivered" copies_are f4c c4 1
tap_check "4: the log says Postfix refused it (552)" log_has "$m" "mirror f4c@$D: m02 not mirrored: Postfix refused the copy for f4c@$D: 552"
st f4c
check_st "4: refused for good: seen, not pending" '.ids.seen == 1 and .ids.pending == 0 and .ids.held == 1'
c=$(grep -c 'cmd [0-9]*: TOP' "$H_DIR/fk-c4/log")
fk_sync f4c
st f4c
check_st "4: the next sync does not fetch it again" '.sync.ok and .sync.fetched == 0'
tap_check "4: (the primary saw no further TOP)" test "$(grep -c 'cmd [0-9]*: TOP' "$H_DIR/fk-c4/log")" = "$c"
fk_del f4c

# ---- 14. a filter refuses one copy after its data: pending, the rest go on --
fk_start c14 && fk_msgs c14 1 4 && fk_add f14 c14
printf '/^Subject: fk c14 2$/ REJECT 5.7.1 no thanks\n' >"$H_DIR/hc14"
H_POSTFIX_MAIN_EXTRA="$H_POSTFIX_MAIN_EXTRA
header_checks = regexp:$H_DIR/hc14"
tap_check "14: Postfix reloaded with a header_checks rule against message 2" h_postfix_reload
m=$(log_mark)
tap_check "14: the sync fails (one copy refused)" sh -c '! "$0" mirror sync "$1" --wait 30 >/dev/null' "$POSTLINKCTL" "f14@$D"
hm_wait_queue_empty
tap_check "14: messages 1, 3 and 4 delivered, 2 not" copies_are f14 c14 1 3 4
st f14
check_st "14: m02 pending (tried again), not seen; the reason in the status" \
    '.ids.pending == 1 and .ids.seen == 0 and .ids.held == 3 and (.sync.error | test("tried again next sync.*no thanks"))'
H_POSTFIX_MAIN_EXTRA=${H_POSTFIX_MAIN_EXTRA%$'\n'header_checks = regexp:$H_DIR/hc14}
tap_check "14: the rule removed" h_postfix_reload
tap_check "14: the next sync succeeds" fk_sync f14
hm_wait_queue_empty
tap_check "14: now 1-4, each once" copies_are f14 c14 1 2 3 4
fk_del f14

# ---- 10. Postfix refuses the destination (5xx at RCPT): not "seen" -------
fk_start c10 && fk_msgs c10 1 3
fk_add f10 c10
"$POSTLINKCTL" mirror add "f10@$D" --replace --primary "pop3://127.0.0.1:$FK_PORT_c10" --plain \
    --login "$HM_PRIM_USER" --secret-file "$HM_SECRET" --deliver-to "nosuch-f10@$D" \
    --interval 0 >/dev/null
tap_check "10: a sync whose destination Postfix refuses fails" sh -c '! "$0" mirror sync "$1" --wait 30 >/dev/null' "$POSTLINKCTL" "f10@$D"
st f10
check_st "10: the reason is in the status; all 3 ids pending, none seen" \
    '(.sync.ok | not) and (.sync.error | test("refuses copies for nosuch-f10")) and .ids.pending == 3 and .ids.seen == 0 and .ids.held == 0'
"$POSTLINKCTL" mirror add "f10@$D" --replace --primary "pop3://127.0.0.1:$FK_PORT_c10" --plain \
    --login "$HM_PRIM_USER" --secret-file "$HM_SECRET" --deliver-to "f10@$D" --interval 0 >/dev/null
tap_check "10: with the destination fixed, the next sync succeeds" fk_sync f10
hm_wait_queue_empty
tap_check "10: all 3 delivered once" copies_are f10 c10 1 2 3
st f10
check_st "10: 3 held" '.sync.ok and .sync.fetched == 3 and .ids.held == 3 and .ids.pending == 0'
fk_del f10

# ---- 12. pop3:// to a primary without STLS needs --plain -------------------
fk_start c12 && fk_msgs c12 1 1
"$POSTLINKCTL" mirror add "f12@$D" --primary "pop3://127.0.0.1:$FK_PORT_c12" --login "$HM_PRIM_USER" \
    --secret-file "$HM_SECRET" --deliver-to "f12@$D" --interval 0 >/dev/null
tap_check "12: pop3:// to a primary that does not announce STLS fails" \
    sh -c '! "$0" mirror sync "$1" --wait 30 >/dev/null' "$POSTLINKCTL" "f12@$D"
st f12
check_st "12: the status says so and names --plain" '(.sync.error | test("does not announce STLS.*--plain")) and .ids.held == 0'
tap_check "12: the password was not sent (no USER/PASS/AUTH at the fake)" \
    sh -c '! grep -q "cmd [0-9]*: \(USER\|PASS\|AUTH\)" "$0"' "$H_DIR/fk-c12/log"
tap_check "12: --plain with pop3s:// is refused by postlinkctl (64)" \
    sh -c '"$0" mirror add "$1" --replace --primary pop3s://127.0.0.1:1 --plain --login x --secret-file "$2" --deliver-to "$1" 2>/dev/null; test $? = 64' "$POSTLINKCTL" "f12@$D" "$HM_SECRET"
"$POSTLINKCTL" mirror del "f12@$D" >/dev/null

# ---- 11. a withdrawal that fails does not stop new mail -------------------
fk_start c11 && fk_msgs c11 1 3 && fk_add f11 c11
tap_check "11: the first sync" fk_sync f11
hm_wait_queue_empty
hs_kill "$HM_MIRRORD_PID"
tap_check "11: postlink-mirrord restarted with the mailbox's imap_url on a closed port" \
    hm_start_mirrord -o "imap_url=$D=imap://127.0.0.1:$(h_free_port)"
fk_rm c11 1 && fk_msgs c11 4 4
m=$(log_mark)
tap_check "11: with the mailbox's IMAP down, the sync still succeeds" fk_sync f11
hm_wait_queue_empty
st f11
check_st "11: the new one fetched, the withdrawal failed and is counted, m01 still held" \
    '.sync.ok and .sync.fetched == 1 and .sync.withdraw_failed == 1 and .sync.withdrawn == 0 and .ids.held == 4 and (.sync.warning | test("m01"))'
tap_check "11: the copies: 1 2 3 4" copies_are f11 c11 1 2 3 4
tap_check "11: the log says it is tried again" log_has "$m" "withdrawing the copy of m01 (tried again next sync)"
tap_check "11: status text shows the warning" sh -c '"$0" mirror status "$1" | grep -q "warning: .*m01"' "$POSTLINKCTL" "f11@$D"
hs_kill "$HM_MIRRORD_PID"
tap_check "11: postlink-mirrord restarted as before" hm_start_mirrord
tap_check "11: with IMAP back, the next sync" fk_sync f11
st f11
check_st "11: withdraws m01 now" '.sync.ok and .sync.withdrawn == 1 and .sync.withdraw_failed == 0 and .ids.held == 3 and .sync.warning == ""'
tap_check "11: the copies: 2 3 4" copies_are f11 c11 2 3 4
fk_del f11

# ---- postlink-mirrord again, with mirror_missing_syncs = 2 and
# mirror_max_message = 10m --------------------------------------------------
n=$(grep -c 'postlink-mirrord .*sync thread' "$LOG")
hs_kill "$HM_MIRRORD_PID"
hm_start_mirrord -o mirror_missing_syncs=2 -o mirror_max_message=10m
end=$(( $(h__ms) + 10000 ))
until [ "$(grep -c 'postlink-mirrord .*sync thread' "$LOG")" -gt "$n" ] || [ "$(h__ms)" -ge $end ]; do sleep 0.05; done
tap_check "postlink-mirrord restarted with -o mirror_missing_syncs=2 -o mirror_max_message=10m" h__alive "$HM_MIRRORD_PID"

# ---- 4. over mirror_max_message -----------------------------------------
fk_add f4b c4
m=$(log_mark)
c=$(grep -c 'cmd [0-9]*: TOP' "$H_DIR/fk-c4/log")
tap_check "4: a sync with mirror_max_message = 10m succeeds" fk_sync f4b
hm_wait_queue_empty
tap_check "4: only m01 delivered" copies_are f4b c4 1
tap_check "4: the log says it is over mirror_max_message" log_has "$m" "mirror f4b@$D: m02 not mirrored: $BIG bytes is over mirror_max_message"
st f4b
check_st "4: status: oversize 1, the id seen" '.sync.oversize == 1 and .ids.seen == 1 and .sync.fetched == 1'
tap_check "4: the big one was not even fetched (one TOP)" test "$(grep -c 'cmd [0-9]*: TOP' "$H_DIR/fk-c4/log")" = "$((c + 1))"
fk_del f4b

# ---- 9. mirror_missing_syncs = 2 ------------------------------------------
fk_start c9 && fk_msgs c9 1 4 && fk_add f9 c9
tap_check "9: the first sync" fk_sync f9
hm_wait_queue_empty
fk_rm c9 2
tap_check "9: the sync after m02 vanished" fk_sync f9
st f9
check_st "9: missing from one complete listing: counted missing, not withdrawn" \
    '.sync.complete and .sync.missing == 1 and .sync.withdrawn == 0 and .ids.held == 4'
tap_check "9: its copy stays" copies_are f9 c9 1 2 3 4
tap_check "9: the second sync without it" fk_sync f9
st f9
check_st "9: missing from the second listing: withdrawn" \
    '.sync.withdrawn == 1 and .sync.missing == 0 and .ids.tombstones == 1 and .ids.held == 3'
tap_check "9: its copy is gone" copies_are f9 c9 1 3 4
fk_del f9

# ---- 13. a tombstone is forgotten after mirror_tombstone_ttl ----------------
FT=/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1
fk_start c13 && fk_msgs c13 1 3 && fk_add f13 c13
tap_check "13: the first sync" fk_sync f13
hm_wait_queue_empty
fk_rm c13 1
tap_check "13: the two syncs after m01 vanished (mirror_missing_syncs = 2)" sh -c 'fk_sync() { "$0" mirror sync "$1" --wait 30 >/dev/null; }; fk_sync "$1" && fk_sync "$1"' "$POSTLINKCTL" "f13@$D"
st f13
check_st "13: m01 withdrawn, a tombstone now" '.sync.withdrawn == 1 and .ids.tombstones == 1 and .ids.held == 2'
hs_kill "$HM_MIRRORD_PID"
HM_MIRRORD_ENV="LD_PRELOAD=$FT FAKETIME=+100d" hm_start_mirrord -o mirror_missing_syncs=2 -o mirror_max_message=10m
tap_check "13: a sync by postlink-mirrord restarted 100 days on (libfaketime)" fk_sync f13
st f13
check_st "13: (its clock is 100 days on)" ".sync.last > $(( $(date +%s) + 99 * 86400 ))"
check_st "13: the tombstone older than mirror_tombstone_ttl (90d) is purged, the rest kept" \
    '.sync.ok and .sync.purged == 1 and .ids.tombstones == 0 and .ids.held == 2 and .sync.fetched == 0'
tap_check "13: the copies of m02 and m03 stay" copies_are f13 c13 2 3
hs_kill "$HM_MIRRORD_PID"
hm_start_mirrord -o mirror_missing_syncs=2 -o mirror_max_message=10m
tap_check "13: postlink-mirrord back at today's time" h__alive "$HM_MIRRORD_PID"
fk_del f13

# ---- all cases -----------------------------------------------------------
tap_check "the mirror never sent DELE or RETR to a fake primary" \
    sh -c '! grep -h "cmd [0-9]*: \(DELE\|RETR\)" "$0"/fk-*/log' "$H_DIR"
tap_check "postlink-mirrord is still running" h__alive "$HM_MIRRORD_PID"
tap_done
