#!/usr/bin/env bash
# t_mirror_harness.sh -- the POP3 mirror's test harness (tests/harness/
# mirror.sh) itself: hm_fill makes distinct messages that POP3 TOP gives
# back byte-for-byte, TOP leaves the primary's IMAP snapshot unchanged while
# one RETR sets \Seen (the premise of the mirror's design), Dovecot's
# logged counters match the bytes sent, fetchmail really downloads and
# deletes, pop3s verifies only with HM_CA, a UIDL scheme change renames
# every message but keeps them, and pop3_deleted_flag makes DELE only hide. Needs root, Dovecot, fetchmail, python3.
set -u
: "${abs_top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$abs_top_srcdir/tests/integration/tap.sh"
. "$abs_top_srcdir/tests/harness/harness.sh"
. "$abs_top_srcdir/tests/harness/mirror.sh"

h_init || { tap_fail "harness init (needs root)"; tap_done; exit 1; }
t0=$(h__ms)
hm_setup && h_start_dovecot || { tap_fail "harness starts (dovecot with the mirror additions)"; tap_done; exit 1; }
tap_diag "hm_setup + h_start_dovecot took $(( $(h__ms) - t0 )) ms; H_DIR=$H_DIR"
S=$H_DIR/snap

# check DESCRIPTION COMMAND...: like tap_check, prints $out on failure
check() {
    local desc=$1; shift
    if "$@"; then tap_ok "$desc"; else tap_fail "$desc"; printf '%s\n' "$out" | sed 's/^/#   /'; fi
}
# pop3 PYTHON: run a python3 snippet with a logged-in poplib client "p"
pop3() {
    MD=$(h__maildir "$HM_PRIM_USER") hm__py <<PY
import os, poplib, sys
p = poplib.POP3("127.0.0.1", int(os.environ["HM_PORT_POP3"]), timeout=30)
p.user(os.environ["HM_PRIM_USER"]); p.pass_(os.environ["HM_PRIM_PASS"])
$1
p.quit()
PY
}
kv() { sed -n "s/.*\<$1=\([0-9]*\).*/\1/p" <<<"$2"; }   # kv KEY "a=1 b=2"

# --- a. hm_fill 200: 200 messages, 200 distinct UIDLs
hm_fill 200
hm_uidls >"$H_DIR/uidl.0"
out=$(wc -l <"$H_DIR/uidl.0"; cut -d' ' -f2 "$H_DIR/uidl.0" | sort -u | wc -l; echo "HM_SEQ=$HM_SEQ")
check "hm_fill 200: 200 POP3 UIDLs, all distinct, HM_SEQ=200" \
    eval '[ "$out" = "200"$'"'\n'"'"200"$'"'\n'"'"HM_SEQ=200" ]'

# --- b. TOP n 2147483647 of every message: the files byte-for-byte, in order
m0=$(hm_log_mark)
hm_snapshot "$S.0"
out=$(pop3 '
import glob
man = [l.split() for l in open(os.environ["H_DIR"] + "/hm-manifest")]
files = sorted(glob.glob(os.environ["MD"] + "/*/*"), key=lambda f: int(f.rsplit("/", 1)[1].split(".")[0]))
sizes = [int(l.split()[1]) for l in p.list()[1]]
bad = 0
for i, size in enumerate(sizes, 1):
    lines = p.top(i, 2147483647)[1]
    data = b"\n".join(lines) + b"\n"
    want = open(files[i - 1], "rb").read()
    if data != want or size != int(man[i - 1][3]) or ("Message-ID: " + man[i - 1][1]).encode() not in lines:
        bad += 1
print("messages=%d list_sum=%d bad=%d" % (len(sizes), sum(sizes), bad))
')
list_sum=$(kv list_sum "$out")
check "TOP of all 200 messages gives each file (LF) in SEQ order, LIST = manifest size" \
    eval '[[ $out == "messages=200 list_sum="*" bad=0" ]]'
hm_wait_logouts "$m0" 1
hm_snapshot "$S.1"
out=$(head -n 3 "$S.0"; wc -l <"$S.0"; hm_same_snapshot "$S.0" "$S.1")
check "the IMAP snapshot (EXAMINE) is unchanged by a TOP session over all messages" \
    eval '[ "$(wc -l <"$S.0")" = 201 ] && ! grep -q "Seen" "$S.0" && hm_same_snapshot "$S.0" "$S.1"'

# Dovecot counts, for TOP, its "+OK\r\n" and the message sent with CRLF line
# ends and dot-stuffing, without the final ".\r\n": LIST size + 5 + the
# number of lines that start with ".".
dots=$(awk '{ s += $5 } END { print s }' "$H_DIR/hm-manifest")
b=$(hm_pop3_bytes "$m0")
out="$b; list_sum=$list_sum dot_lines=$dots"
check "dovecot.log counts that session: top=200, top_bytes = LIST sum + 5*200 + dot lines ($dots), no RETR" \
    eval '[[ $b == "sessions=1 top=200 top_bytes=$((list_sum + 1000 + dots)) retr=0 retr_bytes=0 deleted=0 "* ]] &&
        [ "$(kv bytes_out "$b")" -gt "$(kv top_bytes "$b")" ]'

# --- c. one RETR sets \Seen on that message (and nothing else changes)
m1=$(hm_log_mark)
pop3 'p.retr(1)' >/dev/null
hm_wait_logouts "$m1" 1
hm_snapshot "$S.2"
out=$(diff "$S.1" "$S.2")
uid1=$(sed -n 2p "$S.1" | cut -d' ' -f1)
check "one RETR changes exactly the FLAGS of that message to \\Seen (same body digest)" \
    eval '[ "$(diff "$S.1" "$S.2" | grep -c "^[<>]")" = 2 ] &&
        [ "$(sed -n 2p "$S.2")" = "$uid1 \\Seen $(sed -n 2p "$S.1" | cut -d" " -f3)" ]'
b=$(hm_pop3_bytes "$m1")
out=$b
check "dovecot.log counts the RETR session: retr=1, no TOP" eval '[[ $b == "sessions=1 top=0 top_bytes=0 retr=1 "* ]]'

# --- d. fetchmail takes the 10 oldest and deletes them on the primary
m2=$(hm_log_mark)
hm_fetchmail_take 10
rc=$?
out=$(tail -n 15 "$H_DIR/fetchmail.d/fetchmail.log")
check "fetchmail takes 10 (exit $HM_FETCHMAIL_STATUS, hm_fetchmail_take returns 0)" test $rc = 0
got=$(grep -h '^Message-ID:' "$H_DIR"/fetchmail/* 2>/dev/null | sort -t. -k2 -n | tr -d '\r' | tr '\n' ' ')
want=$(for i in $(seq 10); do printf 'Message-ID: <hm-1.%d@primary.test> ' "$i"; done)
out="got: $got"
check "fetchmail: 10 files in \$H_DIR/fetchmail, messages 1..10" \
    eval '[ "$(ls "$H_DIR/fetchmail" | wc -l)" = 10 ] && [ "$got" = "$want" ]'
hm_wait_logouts "$m2" 1
b=$(hm_pop3_bytes "$m2")
out=$b
check "dovecot.log counts fetchmail's session: retr=10 deleted=10, no TOP" \
    eval '[[ $b == "sessions=1 top=0 top_bytes=0 retr=10 "* ]] && [ "$(kv deleted "$b")" = 10 ]'
hm_uidls >"$H_DIR/uidl.1"
out=$(diff <(cut -d' ' -f2 "$H_DIR/uidl.0" | tail -n +11) <(cut -d' ' -f2 "$H_DIR/uidl.1"))
check "190 UIDLs left, the same as before for messages 11..200" \
    eval '[ "$(wc -l <"$H_DIR/uidl.1")" = 190 ] && [ -z "$out" ]'
hm_snapshot "$S.3"
out=$(diff "$S.2" "$S.3" | head -n 20)
check "the snapshot lost exactly the first 10 UIDs, the rest unchanged" \
    eval '[ "$(diff "$S.2" "$S.3" | grep -c "^<")" = 10 ] && [ "$(diff "$S.2" "$S.3" | grep -c "^>")" = 0 ] &&
        [ "$(diff "$S.2" "$S.3" | grep "^<" | cut -d" " -f2 | tr "\n" " ")" = "$(sed -n 2,11p "$S.2" | cut -d" " -f1 | tr "\n" " ")" ]'

# --- e. pop3s: verifies with HM_CA, not without; the expired name fails
out=$(hm__py "$HM_POP3S_PORT" "$HM_CA" "$HM_TLS_NAME" "$HM_EXPIRED_CA" "$HM_EXPIRED_NAME" <<'PY' 2>&1
import os, socket, ssl, sys
port, ca, name, eca, ename = sys.argv[1:]
def tls(ctx, host):
    try:
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(port)), timeout=10), server_hostname=host)
    except ssl.SSLCertVerificationError as e:
        return "verify-failed:" + e.verify_message.replace(" ", "-")
    f = s.makefile("rwb")
    r = [f.readline()]
    for c in ("USER " + os.environ["HM_PRIM_USER"], "PASS " + os.environ["HM_PRIM_PASS"], "STAT", "QUIT"):
        f.write(c.encode() + b"\r\n"); f.flush()
        r.append(f.readline())
    s.close()
    return "ok " + r[3].decode().split()[1]
print("with-ca", tls(ssl.create_default_context(cafile=ca), name))
print("no-ca", tls(ssl.create_default_context(), name))
print("expired", tls(ssl.create_default_context(cafile=eca), ename))
PY
)
check "pop3s: verified with HM_CA as $HM_TLS_NAME, login and STAT show 190" grep -qx "with-ca ok 190" <<<"$out"
check "pop3s: without HM_CA verification fails (self-signed)" grep -q "^no-ca verify-failed:self-signed" <<<"$out"
check "pop3s: SNI $HM_EXPIRED_NAME gets an expired certificate" grep -qx "expired verify-failed:certificate-has-expired" <<<"$out"

# --- f. a UIDL scheme change: every UIDL new, the messages kept
hm_change_uidl_scheme
rc=$?
hm_uidls >"$H_DIR/uidl.2"
out=$(head -n 3 "$H_DIR/uidl.1" "$H_DIR/uidl.2")
check "hm_change_uidl_scheme: 190 UIDLs, none of them an old one" \
    eval '[ $rc = 0 ] && [ "$(wc -l <"$H_DIR/uidl.2")" = 190 ] &&
        [ -z "$(comm -12 <(cut -d" " -f2 "$H_DIR/uidl.1" | sort) <(cut -d" " -f2 "$H_DIR/uidl.2" | sort))" ]'
hm_snapshot "$S.4"
out=$(hm_same_snapshot "$S.3" "$S.4")
check "hm_change_uidl_scheme: the IMAP snapshot is unchanged (same UIDs, flags, bodies)" hm_same_snapshot "$S.3" "$S.4"

# --- g. a primary that only hides what POP3 deletes (pop3_deleted_flag)
hm_set_pop3_extra 'pop3_deleted_flag = "$POP3Deleted"'
rc=$?
hm_fetchmail_take 5
rc="$rc $?"
hm_uidls >"$H_DIR/uidl.3"
hm_snapshot "$S.5"
out=$(echo "rc=$rc"; diff "$S.4" "$S.5")
check "pop3_deleted_flag: fetchmail's 5 DELEs hide them from POP3 (185 left), IMAP keeps all 190, 5 flagged" \
    eval '[ "$rc" = "0 0" ] && [ "$(wc -l <"$H_DIR/uidl.3")" = 185 ] && [ "$(wc -l <"$S.5")" = 191 ] &&
        [ "$(grep -c "POP3Deleted" "$S.5")" = 5 ] && [ "$(ls "$H_DIR/fetchmail" | wc -l)" = 15 ]'

# --- h. hm_fill 5000 (timed, not asserted) and POP3 sees them all
t1=$(h__ms)
hm_fill 5000
tap_diag "hm_fill 5000 took $(( $(h__ms) - t1 )) ms ($(awk 'NR > 200 { s += $3 } END { print s }' "$H_DIR/hm-manifest") bytes)"
t1=$(h__ms)
out=$(pop3 'print(p.stat()[0])')
tap_diag "first POP3 STAT after it took $(( $(h__ms) - t1 )) ms"
check "POP3 STAT shows 5185 messages after hm_fill 5000" test "$out" = 5185

# --- everything stops, and nothing is left
h_stop_all
out="left: $(h_leftovers)"
check "stop: nothing left running" test -z "$(h_leftovers)"
tap_diag "whole test took $(( $(h__ms) - t0 )) ms"
tap_done
