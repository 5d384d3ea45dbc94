#!/usr/bin/env bash
# t_harness.sh -- the test harness itself, seen as a user sees it: mail
# submitted with SASL leaves byte-for-byte through the sink, strangers can
# reach local mailboxes (Dovecot LMTP) but cannot relay, bad logins are
# refused, a dead milter tempfails, IMAP/POP3 show the mail, and nothing is
# left running afterwards. Needs root, Postfix, Dovecot, swaks.
set -u
: "${abs_top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$abs_top_srcdir/tests/integration/tap.sh"
. "$abs_top_srcdir/tests/harness/harness.sh"

h_init || { tap_fail "harness init (needs root)"; tap_done; exit 1; }
t0=$(h__ms)
h_start_all || { tap_fail "harness starts"; tap_done; exit 1; }
tap_diag "h_start_all took $(( $(h__ms) - t0 )) ms; H_DIR=$H_DIR"
D=$POSTLINK_DOMAIN
tag=t$$.$RANDOM

# send ARGS...: swaks transcript on stdout, swaks exit code in $rc
send() { out=$(swaks --server 127.0.0.1 --timeout 10 "$@" 2>&1); rc=$?; }
# check DESCRIPTION COMMAND...: like tap_check, dumps the transcript on failure
check() {
    local desc=$1; shift
    if "$@"; then tap_ok "$desc"; else tap_fail "$desc"; printf '%s\n' "$out" | sed 's/^/#   /'; fi
}
has() { grep -qE -- "$1" <<<"$out"; }

# --- a. submission with SASL to a remote address reaches the sink intact
msg=$H_DIR/msg.eml
{
    printf 'From: Alice <%s>\r\n' "$POSTLINK_DEMO_USER"
    printf 'To: Someone <someone@remote.example>\r\n'
    printf 'Subject: harness relay %s\r\n' "$tag"
    printf 'Date: %s\r\n' "$(LC_ALL=C date -R)"
    printf 'Message-ID: <%s@%s>\r\n' "$tag" "$D"
    printf 'MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n'
    printf 'Content-Transfer-Encoding: 8bit\r\n\r\n'
    printf 'first line\r\n'
    printf 'long %0300d end\r\n' 7
    printf '.a line that starts with a dot\r\n..two dots\r\n.\r\n'
    printf '8-bit: Gr\xc3\xbc\xc3\x9fe \xe2\x82\xac and raw \xe9\xff\r\n'
    printf 'trailing blanks \t \r\n\r\nlast line\r\n'
} >"$msg"
head -c -2 "$msg" >"$msg.swaks"   # swaks adds the final CRLF itself
send --port "$POSTLINK_SUBMISSION_PORT" --auth PLAIN --auth-user "$POSTLINK_DEMO_USER" \
    --auth-password "$POSTLINK_DEMO_PASS" --from "$POSTLINK_DEMO_USER" \
    --to someone@remote.example --data "@$msg.swaks"
check "submission: alice (SASL) may relay to a remote address" test $rc = 0
h_wait_sink_files 1 15
f=$(h_sink_files | tail -n 1)
printf 'X-Envelope-From: <%s>\r\nX-Envelope-To: <someone@remote.example>\r\n' "$POSTLINK_DEMO_USER" >"$H_DIR/env.want"
out="sink file: ${f:-none}"
check "sink: one file with the right envelope lines" \
    eval '[ "$(h_count_sink_files)" = 1 ] && head -n 2 "$f" | cmp -s - "$H_DIR/env.want"'
# Skip the envelope lines and the one Received: header (with its folded lines).
n=0 state=env
while IFS= read -r line; do
    n=$((n + 1))
    case $state:$line in
    env:X-Envelope-*) ;;
    env:Received:*) state=rcv ;;
    rcv:[$' \t']*) ;;
    *) break ;;
    esac
done <"${f:-/dev/null}"
out=$(tail -n +"$n" "${f:-/dev/null}" | cmp - "$msg" 2>&1)
check "sink: DATA is the sent message byte-for-byte plus one Received: header" \
    eval '[ $state = rcv ] && tail -n +"$n" "$f" | cmp -s - "$msg"'

# --- b. a stranger on the MX port reaches a local mailbox (via Dovecot LMTP)
send --port "$POSTLINK_SMTP_PORT" --from stranger@elsewhere.example --to "bob@$D" \
    --header "Subject: mx $tag"
check "mx: a stranger's mail to bob@$D is accepted" test $rc = 0
h_wait_maildir_files bob 1 15
out=$(ls -R "$(h__maildir bob)")
check "mx: the message is in bob's maildir" \
    eval 'grep -lq "^Subject: mx $tag" "$(h__maildir bob)"/new/* "$(h__maildir bob)"/cur/* 2>/dev/null'

# --- c. a stranger on the MX port cannot relay
send --port "$POSTLINK_SMTP_PORT" --from stranger@elsewhere.example --to someone@remote.example
check "mx: relaying for a stranger is refused with 5xx at RCPT" eval '[ $rc = 24 ] && has "^<\*\* 5[0-9][0-9] .*Relay access denied"'
sleep 0.5
out=$(h_postqueue -p; ls "$POSTLINK_SINK_DIR")
check "mx: nothing queued and nothing more at the sink" \
    eval '[ "$(h_count_sink_files)" = 1 ] && has "Mail queue is empty"'

# --- d. bad SASL password and unauthenticated relay on the submission port
send --port "$POSTLINK_SUBMISSION_PORT" --auth PLAIN --auth-user "$POSTLINK_DEMO_USER" \
    --auth-password wrong-pw --quit-after AUTH
check "submission: a wrong password is refused with 535" has '^<\*\* 535 '
t1=$(h__ms)
send --port "$POSTLINK_SUBMISSION_PORT" --auth PLAIN --auth-user "$POSTLINK_DEMO_USER" \
    --auth-password "$POSTLINK_DEMO_PASS" --quit-after AUTH
check "submission: the right password works at once after a failure" \
    eval '[ $rc = 0 ] && has "^<-  235 " && [ $(( $(h__ms) - t1 )) -lt 3000 ]'
send --port "$POSTLINK_SUBMISSION_PORT" --from "$POSTLINK_DEMO_USER" --to someone@remote.example
check "submission: relaying without AUTH is refused with 5xx" eval '[ $rc = 24 ] && has "^<\*\* 5[0-9][0-9] "'

# --- e. a dead milter on the MX listener: Postfix tempfails, nothing delivered
H_SMTP_OPTS="-o smtpd_milters=unix:$H_DIR/nonexistent.sock"
h_postfix_reload
send --port "$POSTLINK_SMTP_PORT" --from stranger@elsewhere.example --to "bob@$D" \
    --header "Subject: milter $tag"
check "mx with a dead milter: the client gets 4xx" eval '[ $rc != 0 ] && has "^<\*\* 4[0-9][0-9] " && ! has "^<\*\* 5"'
sleep 0.5
out=$(h_postqueue -p)
check "mx with a dead milter: nothing queued or delivered" \
    eval '[ "$(h_count_maildir_files bob)" = 1 ] && has "Mail queue is empty"'

# --- f. IMAP and POP3 as a user sees them
# talk PORT LINES...: send each line (CRLF), collect the replies in $out
talk() {
    local port=$1 l r
    shift
    out=""
    exec 3<>"/dev/tcp/127.0.0.1/$port" || return 1
    IFS= read -r -t 5 r <&3 && out+=$r$'\n'
    for l in "$@"; do
        printf '%s\r\n' "$l" >&3
        while IFS= read -r -t 5 r <&3; do
            out+=$r$'\n'
            case $r in [A-Za-z][0-9]" "* | "+OK"* | "-ERR"*) break ;; esac
        done
    done
    exec 3<&-
}
talk "$POSTLINK_IMAP_PORT" "a1 LOGIN \"$POSTLINK_DEMO_USER\" \"$POSTLINK_DEMO_PASS\"" "a2 LOGOUT"
check "imap: alice logs in" has '^a1 OK'
talk "$POSTLINK_IMAP_PORT" "a1 LOGIN \"$POSTLINK_DEMO_USER\" \"wrong-pw\"" "a2 LOGOUT"
check "imap: a wrong password is refused" has '^a1 NO'
talk "$POSTLINK_IMAP_PORT" "a1 LOGIN \"bob@$D\" \"$H_BOB_PASS\"" "a2 STATUS INBOX (MESSAGES)" "a3 LOGOUT"
check "imap: bob sees exactly one message" has '^\* STATUS INBOX \(MESSAGES 1\)'
talk "$POSTLINK_POP3_PORT" "USER bob@$D" "PASS $H_BOB_PASS" "STAT" "QUIT"
check "pop3: bob sees exactly one message" has '^\+OK 1 [0-9]+'

# --- everything stops, by PID, and nothing is left
t1=$(h__ms)
h_stop_all
tap_diag "h_stop_all took $(( $(h__ms) - t1 )) ms"
out=$(cat "$H_DIR/pids"; echo "left: $(h_leftovers)")
check "stop: every recorded process and its children are gone" \
    eval '! while read -r k p s; do h__alive "$p" "$s" && exit 0; done <"$H_DIR/pids"; [ -z "$(h_leftovers)" ]'
tap_diag "whole test took $(( $(h__ms) - t0 )) ms (from h_start_all)"
tap_done
