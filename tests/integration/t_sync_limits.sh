#!/usr/bin/env bash
# t_sync_limits.sh -- capability 1 at the edges of what SMTP carries,
# through a private Postfix:
#   - addresses longer than RFC 5321 allows (254 characters) are refused
#     at MAIL/RCPT with 501, never cut: also the one in the reserved sync
#     domain whose cut form used to lose its domain;
#   - a control whose X-Control-Target line is longer than 998 characters
#     is carried one target per field, so Postfix's LMTP client does not
#     break it inside a Message-ID and postlink-syncd applies it;
#   - a control without a Message-ID of its own is refused (550 5.6.0),
#     also when Postfix added one (local_header_rewrite_clients); the same
#     control with a Message-ID sent twice changes the state once -- with
#     a submission listener whose myhostname differs from cleanup's;
#   - a control with a body larger than postlink-syncd keeps (1 MB) is
#     applied, not acknowledged and then bounced.
set -u
. "${abs_top_srcdir:-.}/tests/integration/tap.sh"
. "$abs_top_srcdir/tests/harness/harness.sh"
. "$abs_top_srcdir/tests/harness/sync.sh"

h_init || exit 1
# smtpd on the submission port names itself differently from cleanup, which
# writes the Message-ID it adds with main.cf's myhostname
H_SUBMISSION_OPTS="-o myhostname=submit.postlink.test"
h_start_sink && h_start_dovecot && hs_setup && h_start_postfix && hs_start || {
    tap_fail "harness starts"; tap_done; exit 1; }
tap_ok "harness starts"

U=$POSTLINK_DEMO_USER PW=$POSTLINK_DEMO_PASS
PHONE=alice-phone@devices.test DESK=alice-desk@devices.test
for d in $PHONE $DESK; do "$POSTLINKCTL" device add "$U" "$d" >/dev/null; done
SUB=$POSTLINK_SUBMISSION_PORT MX=$POSTLINK_SMTP_PORT
auth=(--auth-user "$U" --auth-password "$PW")
state_json() { "$POSTLINKCTL" state show "$U" "$1" --json 2>/dev/null; }
state_is() {
    local end=$((SECONDS + 15))
    until jq_true "$2" "$(state_json "$1")"; do [ $SECONDS -ge $end ] && return 1; sleep 0.1; done
}
rep() { local i; for ((i = 0; i < $2; i++)); do printf %s "$1"; done; }

# --- over-long addresses: refused, never cut --------------------------------
# 320 characters before "@sync.postlink.invalid": cut to the old 320-byte
# buffer it had no domain left and passed the reserved-domain check
LONG_AGENT="$(rep a 320)@sync.postlink.invalid"
out=$(hs_send "$SUB" "$U" "$LONG_AGENT" "${auth[@]}")
tap_check "an over-long address in the reserved domain is refused at RCPT (501 5.1.3)" \
    grep -q '<\*\* *501 5.1.3 recipient address longer than RFC 5321 allows' <<<"$out"
tap_check "and Postfix queued nothing for postlink-syncd" \
    sh -c "! postqueue -c '$H_DIR/postfix/etc' -p | grep -q 'sync.postlink.invalid'"
# 300 characters fit the old buffer but not RFC 5321
LONG_ELSE="$(rep b 64)@$(rep c 60).$(rep d 60).$(rep e 60).$(rep f 50).example"
out=$(hs_send "$SUB" "$U" "$LONG_ELSE" "${auth[@]}")
tap_check "a ${#LONG_ELSE}-character recipient is refused (501 5.1.3), not cut" \
    grep -q '<\*\* *501 5.1.3 ' <<<"$out"
out=$(hs_send "$MX" "$LONG_ELSE" "$U")
tap_check "so is a ${#LONG_ELSE}-character sender (501 5.1.7)" grep -q '<\*\* *501 5.1.7 ' <<<"$out"
OK254="$(rep g 64)@$(rep h 60).$(rep i 60)."
OK254="$OK254$(rep j $((254 - ${#OK254} - 8))).example"
M0=$(hs_msgid limit)
out=$(hs_send "$SUB" "$U" "$OK254" "${auth[@]}" --header "Message-Id: $M0")
tap_check "a recipient of exactly ${#OK254} characters is accepted" grep -q '<-  250 .*queued' <<<"$out"
hs_wait_sink_grep "$M0" 1
tap_check "and reaches the sink under its full address" \
    sh -c "grep -l -- '$M0' '$POSTLINK_SINK_DIR'/* | xargs grep -qi '^X-Envelope-To: <$OK254>'"
tap_check "the milter logged the refusals" \
    test "$(grep -c 'refused \(recipient\|sender\) of .* characters (more than 254)' "$H_SYNC/milter.log")" = 3

# --- a target line longer than 998 characters -------------------------------
targets=() line=""
for i in $(seq 40); do targets+=("$(hs_msgid "long-line-target-$i")"); done
line="${targets[*]}"
C1=$(hs_msgid longline)
out=$(hs_send "$SUB" "$PHONE" "$U" "${auth[@]}" --header "Message-Id: $C1" \
    --add-header "X-Control: read" --add-header "X-Control-Target: $line")
tap_check "a control with a ${#line}-character X-Control-Target line is accepted (250)" \
    grep -q '<-  250 .*queued' <<<"$out"
tap_check "postlink-syncd applies it: all 40 targets held until they arrive" \
    hs_wait_log "$H_SYNC/syncd.log" "control $C1 read .* pending=40 "
tap_check "postlinkctl pending list shows the 40 targets" \
    jq_true "length == 40 and (map(.target) | sort) == ($(printf '%s\n' "${targets[@]}" | jq -R . | jq -s -c 'sort'))" \
    "$("$POSTLINKCTL" pending list "$U" --json)"
tap_check "the milter logged the rewrite" grep -q "X-Control-Target line of .* characters: 40 target(s) rewritten one per field" "$H_SYNC/milter.log"
tap_check "Postfix bounced nothing" sh -c "! grep -q 'status=bounced' '$H_DIR/postfix/maillog'"

# --- a control needs a Message-ID of its own --------------------------------
M1=$(hs_msgid target)
hs_send "$MX" friend@elsewhere.example "$U" --header "Message-Id: $M1" >/dev/null
h_wait_maildir_files alice 1
nomsgid_ctl() {   # a control from the phone whose client sent no Message-ID
    hs_send "$SUB" "$PHONE" "$U" "${auth[@]}" --data "Date: $(date -R)
To: <$U>
From: <$PHONE>
Subject: ctl without Message-ID
X-Control: read
X-Control-Target: $M1

control
"
}
out=$(nomsgid_ctl)
tap_check "a control without a Message-ID from 127.0.0.1 is refused (550 5.6.0), though Postfix added one" \
    grep -q '<\*\* *550 5.6.0 a control message needs a Message-ID' <<<"$out"
tap_check "the milter saw Postfix's Message-ID and said so" \
    grep -q "the control's Message-ID <[0-9]\{14\}\.[0-9A-F]*@mail.postlink.test> was added by Postfix" "$H_SYNC/milter.log"
out=$(nomsgid_ctl)
tap_check "sent again, it is refused again" grep -q '<\*\* *550 5.6.0 ' <<<"$out"
tap_check "neither changed the state (refused at end of message, never queued)" \
    jq_true '.[0].states == [] and .[0].version == 0' "$(state_json "$M1")"
C2=$(hs_msgid once)
for i in 1 2; do
    out=$(hs_send "$SUB" "$PHONE" "$U" "${auth[@]}" --header "Message-Id: $C2" \
        --add-header "X-Control: read" --add-header "X-Control-Target: $M1")
    tap_check "the control with a Message-ID, sent #$i, is accepted (250)" grep -q '<-  250 .*queued' <<<"$out"
done
tap_check "postlink-syncd counts the second as a duplicate" \
    hs_wait_log "$H_SYNC/syncd.log" "control $C2 read .* duplicate=1 "
tap_check "the state version went up once (read, version 1)" \
    jq_true '.[0].states == ["read"] and .[0].version == 1' "$(state_json "$M1")"
# --- a control with a big body ------------------------------------------------
M3=$(hs_msgid bigtarget) C3=$(hs_msgid bigctl)
hs_send "$MX" friend@elsewhere.example "$U" --header "Message-Id: $M3" >/dev/null
h_wait_maildir_files alice 2
head -c 1500000 /dev/zero | tr '\0' 'x' | fold -w 76 >"$H_DIR/big.body"
out=$(hs_send "$SUB" "$PHONE" "$U" "${auth[@]}" --header "Message-Id: $C3" \
    --add-header "X-Control: saved" --add-header "X-Control-Target: $M3" --body "$H_DIR/big.body")
tap_check "a control with a 1.5 MB body is accepted (250)" grep -q '<-  250 .*queued' <<<"$out"
tap_check "... and applied by postlink-syncd (saved), not bounced" state_is "$M3" \
    '.[0].states == ["saved"]'
tap_check "... and Postfix bounced nothing" sh -c "! grep -q 'status=bounced' '$H_DIR/postfix/maillog'"
tap_done
