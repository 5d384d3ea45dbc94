#!/usr/bin/env bash
# t_harness.sh -- proves the private-Postfix harness: mail sent with a real
# SMTP client reaches the sink byte-for-byte (but for Postfix's Received:
# header), strangers can deliver locally but not relay, SASL is enforced,
# a dead milter makes Postfix tempfail, Dovecot serves IMAP, and nothing
# is left running afterwards.
. "${abs_top_srcdir:-.}/tests/integration/tap.sh"
. "${abs_top_srcdir:-.}/tests/harness/harness.sh"

h_init || { echo "1..0 # harness init failed"; exit 1; }
t0=$(h__ms)
if h_start_all; then tap_ok "harness started in $(( $(h__ms) - t0 )) ms"; else tap_fail "harness start"; tap_done; exit 1; fi

# (a) byte-for-byte through the submission port to the sink.
msg=$H_DIR/msg.eml
long=$(printf 'x%.0s' $(seq 1 300))
printf '%s\r\n' \
    "From: Alice <$POSTLINK_DEMO_USER>" \
    "To: Friend <friend@remote.example>" \
    "Subject: harness byte-for-byte check" \
    "Date: Mon, 23 Nov 2026 10:00:00 +0000" \
    "Message-ID: <harness-1@postlink.test>" \
    "MIME-Version: 1.0" \
    "Content-Type: text/plain; charset=utf-8" \
    "Content-Transfer-Encoding: 8bit" \
    "" \
    "A long line: $long" \
    ".a line that starts with a dot" \
    "..and one with two" \
    "8-bit: $(printf '\xc3\xa9t\xc3\xa9 \xe2\x82\xac')" \
    "last line" >"$msg"
# swaks ends DATA with CRLF . CRLF after the data it is given: hand it the
# message without its final CRLF, so what it transmits is exactly $msg.
head -c -2 "$msg" >"$msg.swaks"
swaks --server 127.0.0.1 --port "$POSTLINK_SUBMISSION_PORT" --auth PLAIN \
      --auth-user "$POSTLINK_DEMO_USER" --auth-password "$POSTLINK_DEMO_PASS" \
      --from "$POSTLINK_DEMO_USER" --to friend@remote.example --data "@$msg.swaks" \
      >"$H_DIR/a.log" 2>&1
tap_check "submission accepts alice's message" grep -qE '^ *<- *250 .*queued' "$H_DIR/a.log"
if h_wait_sink_files 1 15; then
    f=$(h_sink_files | head -1)
    tap_check "sink envelope sender" grep -qx $'X-Envelope-From: <alice@postlink.test>\r' "$f"
    tap_check "sink envelope recipient" grep -qx $'X-Envelope-To: <friend@remote.example>\r' "$f"
    # Drop the envelope lines and the one Received: header (with its
    # continuation lines) that Postfix prepended; the rest must be the same
    # bytes (awk keeps each line's CR and restores its LF).
    awk '!body && /^X-Envelope-(From|To):/ { next }
         !body && /^Received:/ { inrcv = 1; next }
         inrcv && /^[ \t]/ { next }
         { inrcv = 0; body = 1; print }' "$f" >"$H_DIR/got.eml"
    tap_check "DATA at the sink equals what was sent, byte for byte but Received:" \
        cmp "$msg" "$H_DIR/got.eml"
    tap_check "every line at the sink ends in CRLF" awk '!/\r$/ { bad = 1 } END { exit bad }' "$f"
    tap_check "exactly one Received: header was added" test "$(grep -c '^Received:' "$f")" = 1
else
    tap_fail "message reached the sink"
fi

# (b) a stranger on the MX port delivers to a local user.
swaks --server 127.0.0.1 --port "$POSTLINK_SMTP_PORT" --from stranger@elsewhere.example \
      --to "bob@$POSTLINK_DOMAIN" --header "Subject: from a stranger" >"$H_DIR/b.log" 2>&1
tap_check "MX port accepts mail for bob" grep -qE '^ *<- *250 .*queued' "$H_DIR/b.log"
if h_wait_maildir_files bob 1 15; then
    f=$(find "$(h__maildir bob)" -type f -path '*/new/*' | head -1)
    tap_check "bob's copy went through Dovecot LMTP" grep -q '^Subject: from a stranger' "$f"
else
    tap_fail "bob's maildir got the message"
fi

# (c) the stranger cannot relay.
before=$(h_count_sink_files)
swaks --server 127.0.0.1 --port "$POSTLINK_SMTP_PORT" --from stranger@elsewhere.example \
      --to someone@remote.example >"$H_DIR/c.log" 2>&1
tap_check "MX port refuses to relay for a stranger (554)" grep -qE '^ *<\*\* *554 .*Relay access denied' "$H_DIR/c.log"
sleep 1
tap_check "nothing more at the sink" test "$(h_count_sink_files)" = "$before"

# (d) SASL is enforced on the submission port.
swaks --server 127.0.0.1 --port "$POSTLINK_SUBMISSION_PORT" --auth PLAIN \
      --auth-user "$POSTLINK_DEMO_USER" --auth-password wrong-password \
      --to someone@remote.example >"$H_DIR/d1.log" 2>&1
tap_check "wrong password refused (535)" grep -qE '^ *<\*\* *535' "$H_DIR/d1.log"
swaks --server 127.0.0.1 --port "$POSTLINK_SUBMISSION_PORT" --from x@elsewhere.example \
      --to someone@remote.example >"$H_DIR/d2.log" 2>&1
tap_check "unauthenticated relay on submission refused (5xx)" grep -qE '^ *<\*\* *5[0-9][0-9]' "$H_DIR/d2.log"

# (f) IMAP login for alice.
imap=$( { exec 3<>"/dev/tcp/127.0.0.1/$POSTLINK_IMAP_PORT" || exit 1
          printf 'a1 LOGIN %s %s\r\na2 LOGOUT\r\n' "$POSTLINK_DEMO_USER" "$POSTLINK_DEMO_PASS" >&3
          timeout 5 cat <&3; } 2>/dev/null)
tap_check "IMAP login works for alice" grep -q '^a1 OK' <<<"$imap"

# (e) a dead milter: Postfix must tempfail, not drop or accept.
n_bob=$(h_count_maildir_files bob)
H_SMTP_OPTS="-o smtpd_milters=unix:$H_DIR/no-such-milter.sock"
if h_postfix_reload; then
    swaks --server 127.0.0.1 --port "$POSTLINK_SMTP_PORT" --from stranger@elsewhere.example \
          --to "bob@$POSTLINK_DOMAIN" --header "Subject: milter is dead" >"$H_DIR/e.log" 2>&1
    tap_check "dead milter: Postfix answers 4xx" grep -qE '^ *<\*\* *4[0-9][0-9]' "$H_DIR/e.log"
    sleep 1
    tap_check "dead milter: nothing delivered" test "$(h_count_maildir_files bob)" = "$n_bob"
else
    tap_fail "postfix reload with a dead milter"
fi

# Everything stops by PID; nothing is left behind.
h_stop_all "$H_DIR"
left=$(h_leftovers "$H_DIR")
tap_check "no process left running after stop${left:+ (left: $left)}" test -z "$left"
tap_done
