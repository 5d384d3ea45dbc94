#!/usr/bin/env bash
# t_mailout.sh -- lib/mailout.c through tests/tools/pl-mailout against the
# harness's real Postfix and Dovecot: SMTP delivery to a local mailbox and
# (through a re-injection listener like the one postlink-syncd uses) to
# the sink, CRLF conversion and dot stuffing, 5xx/4xx/no-connection mapped
# to exit 69/75, unsafe input refused before any connection; IMAP flags set
# and cleared by Message-ID in one login, also as a Dovecot master user.
# Needs root, Postfix, Dovecot, curl.
set -u
: "${abs_top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${abs_top_builddir:=$abs_top_srcdir}"
. "$abs_top_srcdir/tests/integration/tap.sh"
. "$abs_top_srcdir/tests/harness/harness.sh"

M=$abs_top_builddir/tests/tools/pl-mailout
[ -x "$M" ] || { tap_fail "pl-mailout not built: $M"; tap_done; exit 1; }
h_init || { tap_fail "harness init (needs root)"; tap_done; exit 1; }

# A re-injection listener (trusts 127.0.0.1, so it relays), with a 4xx for
# one recipient; a Dovecot master user "postlink" ("USER*postlink").
REINJECT_PORT=$(h_free_port) && DEAD_PORT=$(h_free_port) ||
    { tap_fail "free ports"; tap_done; exit 1; }
printf 'later@remote.example 451 4.3.0 try again later\n' >"$H_DIR/rcpt_access"
H_POSTFIX_MASTER_EXTRA="127.0.0.1:$REINJECT_PORT inet n - n - - smtpd
  -o syslog_name=postfix/reinject -o smtpd_sasl_auth_enable=no
  -o mynetworks=127.0.0.0/8 -o smtpd_relay_restrictions=permit_mynetworks,reject
  -o smtpd_recipient_restrictions=check_recipient_access,texthash:$H_DIR/rcpt_access"
MASTER_PASS=master-pw-$RANDOM
h_dovecot_master_user "$MASTER_PASS"
h_start_all && h_wait_smtp "$REINJECT_PORT" 10 || { tap_fail "harness starts"; tap_done; exit 1; }

D=$POSTLINK_DOMAIN
MX=smtp://127.0.0.1:$POSTLINK_SMTP_PORT
RI=smtp://127.0.0.1:$REINJECT_PORT
IMAP=imap://127.0.0.1:$POSTLINK_IMAP_PORT
ALICE_MD=$(h__maildir alice)
DLOG=$H_DIR/dovecot/dovecot.log
tag=t$$.$RANDOM

# run ARGS...: pl-mailout's output (both streams) in $out, exit code in $rc
run() { out=$("$M" "$@" 2>&1); rc=$?; }
# check DESCRIPTION COMMAND...: like tap_check, shows $out on failure
check() {
    local desc=$1; shift
    if "$@"; then tap_ok "$desc"; else tap_fail "$desc"; printf '%s\n' "$out" | sed 's/^/#   /'; fi
}
has() { grep -qE -- "$1" <<<"$out"; }
body_of() { sed '1,/^\r\{0,1\}$/d' "$1"; }   # everything after the header
logins() { grep -c 'imap-login: Info: Login: ' "$DLOG"; }
imap_attempts() { grep -c 'imap-login: ' "$DLOG"; }
# sink_data FILE: the DATA of a sink file without the envelope lines and
# the one Received: header Postfix adds (with its folded lines).
sink_data() {
    local n=0 state=env line
    while IFS= read -r line; do
        n=$((n + 1))
        case $state:$line in
        env:X-Envelope-*) ;;
        env:Received:*) state=rcv ;;
        rcv:[$' \t']*) ;;
        *) break ;;
        esac
    done <"$1"
    tail -n +"$n" "$1"
}
# newest sink file
last_sink() { h_sink_files | tail -n 1; }

# ---- SMTP ---------------------------------------------------------------

# a. MX port, local recipient: delivered by Dovecot with the body intact.
m1=$H_DIR/m1.eml
{
    printf 'From: Stranger <stranger@elsewhere.example>\r\nTo: <alice@%s>\r\n' "$D"
    printf 'Subject: mailout %s\r\nDate: %s\r\nMessage-ID: <t1@test>\r\n' "$tag" "$(LC_ALL=C date -R)"
    printf 'MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n'
    printf 'body %s\r\n.starts with a dot\r\n8-bit: Gr\xc3\xbc\xc3\x9fe\r\n\r\nlast line\r\n' "$tag"
} >"$m1"
run smtp "$MX" stranger@elsewhere.example "alice@$D" "$m1"
check "smtp: MX port, alice@$D accepted (exit 0, ok)" eval '[ $rc = 0 ] && [ "$out" = ok ]'
h_wait_maildir_files alice 1 15
f=$(grep -l "^Subject: mailout $tag" "$ALICE_MD"/new/* "$ALICE_MD"/cur/* 2>/dev/null | head -n 1)
out="maildir file: ${f:-none}"
check "smtp: in alice's maildir with the body intact" \
    eval '[ -n "$f" ] && body_of "$m1" | tr -d "\r" | cmp -s - <(body_of "$f")'

# b. re-injection listener, two external recipients: one sink file, right
# envelope, DATA byte-for-byte plus one Received: header.
m2=$H_DIR/m2.eml
{
    printf 'From: <alice@%s>\r\nTo: <someone@remote.example>, <other@remote.example>\r\n' "$D"
    printf 'Subject: out %s\r\nDate: %s\r\nMessage-ID: <t2.%s@test>\r\n\r\n' "$tag" "$(LC_ALL=C date -R)" "$tag"
    printf 'hello\r\n..two dots\r\n.\r\nlong %0900d end\r\n' 3
} >"$m2"
run smtp "$RI" "alice@$D" someone@remote.example,other@remote.example "$m2"
check "smtp: re-injection, two external recipients accepted" eval '[ $rc = 0 ] && [ "$out" = ok ]'
h_wait_sink_files 1 15
f=$(last_sink)
# (Postfix may reorder the recipients)
printf 'X-Envelope-From: <alice@%s>\r\nX-Envelope-To: <other@remote.example>\r\nX-Envelope-To: <someone@remote.example>\r\n' \
    "$D" >"$H_DIR/env2.want"
out="sink file: ${f:-none}"
check "smtp: one sink file with the envelope lines right" \
    eval '[ "$(h_count_sink_files)" = 1 ] && head -n 1 "$f" | cmp -s - <(head -n 1 "$H_DIR/env2.want") &&
        head -n 3 "$f" | tail -n 2 | sort | cmp -s - <(tail -n 2 "$H_DIR/env2.want")'
out=$(sink_data "$f" | cmp - "$m2" 2>&1)
check "smtp: sink DATA is the message byte-for-byte" eval 'sink_data "$f" | cmp -s - "$m2"'

# c. LF-only line ends and dot lines: CRLF and dot stuffing on the wire.
m3=$H_DIR/m3.eml
{
    printf 'From: <alice@%s>\nTo: <someone@remote.example>\nSubject: lf %s\n' "$D" "$tag"
    printf 'Date: %s\nMessage-ID: <t3.%s@test>\n\n' "$(LC_ALL=C date -R)" "$tag"
    printf 'line one\n.a line that starts with a dot\n..two dots\n.\n . blank then dot\n'
    printf 'mixed CRLF line\r\n\nlast line\n'
} >"$m3"
run smtp "$RI" "alice@$D" someone@remote.example "$m3"
check "smtp: LF-only message accepted" eval '[ $rc = 0 ] && [ "$out" = ok ]'
h_wait_sink_files 2 15
f=$(last_sink)
sed 's/\r$//; s/$/\r/' "$m3" >"$m3.crlf"
out=$(sink_data "$f" | cmp - "$m3.crlf" 2>&1)
check "smtp: LF-only message arrives intact, with CRLF, dot lines unchanged" \
    eval 'sink_data "$f" | cmp -s - "$m3.crlf"'

# d. no final line end, null sender: curl ends the last line itself.
m4=$H_DIR/m4.eml
printf 'From: <alice@%s>\nSubject: nonl %s\nDate: %s\nMessage-ID: <t4.%s@test>\n\nno newline at the end' \
    "$D" "$tag" "$(LC_ALL=C date -R)" "$tag" >"$m4"
run smtp "$RI" "" someone@remote.example "$m4"
check "smtp: null sender, no final newline accepted" eval '[ $rc = 0 ] && [ "$out" = ok ]'
h_wait_sink_files 3 15
f=$(last_sink)
{ sed 's/$/\r/' "$m4"; printf '\n'; } >"$m4.crlf"
out=$(head -n 1 "$f"; sink_data "$f" | cmp - "$m4.crlf" 2>&1)
check "smtp: MAIL FROM:<> and the last line ended with CRLF" \
    eval 'head -n 1 "$f" | grep -q "^X-Envelope-From: <>" && sink_data "$f" | cmp -s - "$m4.crlf"'

# e. refusals and failures
n_sink=$(h_count_sink_files)
run smtp "$MX" stranger@elsewhere.example someone@remote.example "$m2"
check "smtp: relay attempt on the MX port: exit 69 with the 554 reply" \
    eval '[ $rc = 69 ] && has "554" && has "Relay access denied"'
run smtp "$MX" stranger@elsewhere.example "nobody@$D" "$m1"
check "smtp: unknown local user: exit 69 with the 550 reply" \
    eval '[ $rc = 69 ] && has "550" && has "User unknown"'
run smtp "$RI" "alice@$D" later@remote.example "$m2"
check "smtp: a 451 for the recipient: exit 75 with the reply" \
    eval '[ $rc = 75 ] && has "451" && has "try again later"'
run smtp "smtp://127.0.0.1:$DEAD_PORT" "alice@$D" someone@remote.example "$m2"
check "smtp: closed port: exit 75" eval '[ $rc = 75 ] && has "onnect"'
if command -v python3 >/dev/null; then
    # A server that accepts and never says a word: the time limit holds.
    SILENT_PORT=$(h_free_port)
    h_spawn silent "$H_DIR/silent.log" python3 -c "import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', $SILENT_PORT)); s.listen(5); c = s.accept(); time.sleep(60)"
    h_wait_port "$SILENT_PORT" 10 "$H_LAST_PID"
    t1=$(h__ms)
    out=$(PL_MAILOUT_TIMEOUT=1 "$M" smtp "smtp://127.0.0.1:$SILENT_PORT" "alice@$D" someone@remote.example "$m2" 2>&1)
    rc=$?
    check "smtp: silent server: exit 75 after the time limit" \
        eval '[ $rc = 75 ] && has "timed out" && [ $(( $(h__ms) - t1 )) -lt 5000 ]'
fi
# Unsafe addresses are refused before connecting (a connection to the
# closed port would give 75).
for r in $'x@remote.example\r\nRSET' '<x@remote.example>' 'x@remote.example>' 'a b@remote.example'; do
    run smtp "smtp://127.0.0.1:$DEAD_PORT" "alice@$D" "someone@remote.example,$r" "$m2"
    check "smtp: recipient $(printf %q "$r") refused up front (exit 69)" \
        eval '[ $rc = 69 ] && has "bad recipient"'
done
run smtp "smtp://127.0.0.1:$DEAD_PORT" $'alice@postlink.test>\r\nRSET' someone@remote.example "$m2"
check "smtp: sender with CR LF refused up front (exit 69)" eval '[ $rc = 69 ] && has "bad sender"'
sleep 0.5
out=$(h_postqueue -p; ls "$POSTLINK_SINK_DIR")
check "smtp: nothing of the refused sends queued or at the sink" \
    eval '[ "$(h_count_sink_files)" = "$n_sink" ] && has "Mail queue is empty"'

# ---- IMAP ---------------------------------------------------------------

# fetch_flags USER PASS: FLAGS of every message in USER's INBOX, via curl
fetch_flags() {
    curl -s --max-time 10 "$IMAP/INBOX" -u "$1:$2" -X 'UID FETCH 1:* FLAGS'
}
AP=$POSTLINK_DEMO_PASS
cur_name() { ls "$ALICE_MD/cur" 2>/dev/null; }

n0=$(logins)
run imap "$IMAP" "alice@$D" "$AP" '<t1@test>' +FLAGS '\Seen $Saved'
check "imap: +FLAGS \\Seen \$Saved on <t1@test>: matched 1" eval '[ $rc = 0 ] && [ "$out" = "matched 1" ]'
out="logins before $n0, after $(logins)"
check "imap: search and store in one login" eval '[ $(logins) = $((n0 + 1)) ]'
out=$(cur_name; cat "$ALICE_MD/dovecot-keywords" 2>&1)
check "imap: the maildir file name has S, dovecot-keywords lists \$Saved" \
    eval 'cur_name | grep -q ":2,[A-Za-z]*S" && grep -q " \$Saved\$" "$ALICE_MD/dovecot-keywords"'
out=$(fetch_flags "alice@$D" "$AP")
check "imap: FETCH shows \\Seen and \$Saved" eval 'has "FLAGS \\(.*\\\\Seen" && has "FLAGS \\(.*\\\$Saved"'

run imap "$IMAP" "alice@$D" "$AP" '<t1@test>' -FLAGS '\Seen'
check "imap: -FLAGS \\Seen: matched 1" eval '[ $rc = 0 ] && [ "$out" = "matched 1" ]'
out=$(fetch_flags "alice@$D" "$AP"; cur_name)
check "imap: \\Seen is gone, \$Saved stays" \
    eval '! has "\\\\Seen" && has "FLAGS \\(.*\\\$Saved" && ! cur_name | grep -q ":2,[A-Za-z]*S"'

run imap "$IMAP" "alice@$D" "$AP" '<unknown@test>' +FLAGS '\Seen'
check "imap: unknown Message-ID: matched 0, exit 0" eval '[ $rc = 0 ] && [ "$out" = "matched 0" ]'

# A "%" in the Message-ID is sent as it is (curl URL-decodes custom
# requests): two copies of <p%41@test> match, <pA@test> and <p%22@test> not.
mp=$H_DIR/mp.eml
printf 'From: <x@elsewhere.example>\r\nSubject: pct %s\r\nMessage-ID: <p%%41@test>\r\n\r\npct\r\n' "$tag" >"$mp"
n_alice=$(h_count_maildir_files alice)
"$M" smtp "$MX" x@elsewhere.example "alice@$D" "$mp" >/dev/null &&
    "$M" smtp "$MX" x@elsewhere.example "alice@$D" "$mp" >/dev/null
h_wait_maildir_files alice $((n_alice + 2)) 15
run imap "$IMAP" "alice@$D" "$AP" '<p%41@test>' +FLAGS '\Flagged'
check "imap: <p%41@test> in two messages: matched 2" eval '[ $rc = 0 ] && [ "$out" = "matched 2" ]'
run imap "$IMAP" "alice@$D" "$AP" '<pA@test>' +FLAGS '\Flagged'
check "imap: <pA@test> (the %-decoded form): matched 0" eval '[ $rc = 0 ] && [ "$out" = "matched 0" ]'
run imap "$IMAP" "alice@$D" "$AP" '<p%22@test>' +FLAGS '\Flagged'
check "imap: <p%22@test> stays literal (no quote injected): matched 0" \
    eval '[ $rc = 0 ] && [ "$out" = "matched 0" ]'

# Many tokens in one session (postlink-mirrord's withdrawals): 120 tokens,
# three SEARCHes of up to 50; three messages hold one each (the 5th, the
# 60th and the 115th), one of them twice.
n_alice=$(h_count_maildir_files alice)
toks=()
for i in $(seq 1 120); do toks+=("<tok$i.$tag@test>"); done
for i in 5 60 115 115; do
    printf 'From: <x@elsewhere.example>\r\nSubject: tok %s\r\nX-Tok: <tok%s.%s@test>\r\n\r\ntok\r\n' \
        "$i" "$i" "$tag" >"$H_DIR/tok.eml"
    "$M" smtp "$MX" x@elsewhere.example "alice@$D" "$H_DIR/tok.eml" >/dev/null
done
h_wait_maildir_files alice $((n_alice + 4)) 15
n0=$(logins)
out=$("$M" tokens "$IMAP" "alice@$D" "$AP" X-Tok '$Gone' "${toks[@]}" 2>&1); rc=$?
check "imap: 120 tokens: the 4 messages holding 3 of them matched" eval '[ $rc = 0 ] && [ "$out" = "matched 4" ]'
out="logins before $n0, after $(logins)"
check "imap: ... in one login" eval '[ $(logins) = $((n0 + 1)) ]'
out=$(curl -s --max-time 10 "$IMAP/INBOX" -u "alice@$D:$AP" -X 'UID SEARCH KEYWORD $Gone')
check "imap: ... and exactly those 4 carry the keyword" \
    eval '[ "$(sed -n "s/^\* SEARCH//p" <<<"$out" | tr -d "\r" | wc -w)" = 4 ]'
out=$("$M" tokens "$IMAP" "alice@$D" "$AP" X-Tok expunge "${toks[@]:50}" 2>&1); rc=$?
check "imap: expunge by the tokens 51-120: the 3 messages of the 60th and 115th" \
    eval '[ $rc = 0 ] && [ "$out" = "matched 3" ]'
out=$(curl -s --max-time 10 "$IMAP/INBOX" -u "alice@$D:$AP" -X 'UID SEARCH KEYWORD $Gone')
check "imap: ... only the 5th's message is left" \
    eval '[ "$(sed -n "s/^\* SEARCH//p" <<<"$out" | tr -d "\r" | wc -w)" = 1 ]'

run imap "$IMAP" "alice@$D" wrong-pw '<t1@test>' +FLAGS '\Seen'
check "imap: wrong password: exit 75" eval '[ $rc = 75 ] && has "AUTHENTICATIONFAILED|Login denied"'
run imap "imap://127.0.0.1:$DEAD_PORT" "alice@$D" "$AP" '<t1@test>' +FLAGS '\Seen'
check "imap: closed port: exit 75" eval '[ $rc = 75 ]'

a0=$(imap_attempts)
for id in '<t1"@test>' '<t1@test> OR ALL' '<t1\@test>' 't1@test' '<t1@test>"' $'<t1@test>\r\nA1 LOGOUT'; do
    run imap "$IMAP" "alice@$D" "$AP" "$id" +FLAGS '\Seen'
    check "imap: Message-ID $(printf %q "$id") refused (exit 69)" eval '[ $rc = 69 ] && has "bad Message-ID"'
done
for fl in '\Seen) (x' '\Seen "x"' '' '\*' '\Seen  $Saved' $'\\Seen\r\nA1 LOGOUT'; do
    run imap "$IMAP" "alice@$D" "$AP" '<t1@test>' +FLAGS "$fl"
    check "imap: flag list $(printf %q "$fl") refused (exit 69)" eval '[ $rc = 69 ] && has "bad IMAP flag"'
done
out="imap-login lines before $a0, after $(imap_attempts)"
check "imap: refused input made no connection" eval '[ $(imap_attempts) = $a0 ]'

# Master user: "alice@D*postlink" with the master password acts on alice.
run imap "$IMAP" "alice@$D*postlink" "$MASTER_PASS" '<t1@test>' +FLAGS '$Forwarded'
check "imap: master user postlink logs in as alice: matched 1" \
    eval '[ $rc = 0 ] && [ "$out" = "matched 1" ]'
out=$(fetch_flags "alice@$D" "$AP")
check "imap: the master user's change is on alice's message" eval 'has "FLAGS \\(.*\\\$Forwarded"'
run imap "$IMAP" "alice@$D*postlink" wrong-pw '<t1@test>' +FLAGS '$Forwarded'
check "imap: master user with a wrong password: exit 75" eval '[ $rc = 75 ]'
run imap "$IMAP" "nobody@$D*postlink" "$MASTER_PASS" '<t1@test>' +FLAGS '$Forwarded'
check "imap: master user for a user that does not exist: exit 75" eval '[ $rc = 75 ]'

tap_done
