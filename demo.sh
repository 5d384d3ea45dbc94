#!/usr/bin/env bash
# demo.sh -- the README's first command: install what is missing, build,
# start a private Postfix on 127.0.0.1 with Dovecot (local mailboxes, SASL)
# and postlink's test sink, set up the postlink store, send real mail both
# ways, print what happened step by step, and stop everything by PID.
#
#   ./demo.sh        run the demo, stop everything, exit 0 only if every step worked
#   ./demo.sh up     the same, but leave it running and write demo/env
#   ./demo.sh down   stop what "./demo.sh up" left running
set -u
cd "$(dirname "$0")"
TOP=$PWD
MODE=${1:-run}
ENVFILE=$TOP/demo/env

case $MODE in
run|up) ;;
down)
    if [ ! -f "$ENVFILE" ]; then echo "demo.sh: nothing is running (no demo/env)"; exit 0; fi
    . "$ENVFILE"
    . "$TOP/tests/harness/harness.sh"
    h_stop_all "$H_DIR" && rm -rf "$H_DIR" "$ENVFILE"
    echo "demo.sh: stopped everything started from $H_DIR"
    exit 0 ;;
*)  echo "usage: ./demo.sh [up|down]" >&2; exit 64 ;;
esac
if [ "$MODE" = up ] && [ -f "$ENVFILE" ]; then
    echo "demo.sh: already up (demo/env exists); run ./demo.sh down first" >&2
    exit 1
fi

STEP=0 FAILED=0
step()  { STEP=$((STEP + 1)); printf '\n[%d] %s\n' "$STEP" "$*"; }
ok()    { printf '    ok: %s\n' "$*"; }
bad()   { printf '    FAILED: %s\n' "$*"; FAILED=$((FAILED + 1)); }
show()  { sed 's/^/    | /'; }

step "install missing Debian packages"
./scripts/install-deps.sh | show || { bad "package installation"; exit 1; }
ok "dependencies present"

step "build (autotools, -Wall -Wextra -Werror)"
if ./autogen.sh >/dev/null 2>&1 && mkdir -p build && cd build &&
   { [ -f Makefile ] || ../configure -q; } && make -s -j"$(nproc)" >/dev/null &&
   make -s tests/sink/postlink-sink tests/tools/pl-xmpp-client tests/tools/pl-presence \
       tests/tools/pl-push-client >/dev/null; then
    cd "$TOP"; ok "built build/ctl/postlinkctl and the test sink"
else
    cd "$TOP"; bad "build failed"; exit 1
fi

export abs_top_srcdir=$TOP abs_top_builddir=$TOP/build
. "$TOP/tests/harness/harness.sh"
. "$TOP/tests/harness/sync.sh"
. "$TOP/tests/harness/xmpp.sh"
. "$TOP/tests/harness/push.sh"
CTL=$TOP/build/ctl/postlinkctl

step "start the sink, Dovecot and Prosody, write postlink.conf, create the store, start Postfix and postlink"
h_init || { bad "harness"; exit 1; }
. "$TOP/tests/harness/mirror.sh"
hm_setup || { bad "harness (the primary POP3 mailbox)"; exit 1; }
# postlink-syncd sets each state on the message in the user's own mailbox
# too (imap_url), logged in to Dovecot as a master user for that user
IMAP_MASTER_PASS=demo-master-$RANDOM$RANDOM
h_dovecot_master_user "$IMAP_MASTER_PASS"
mkdir -p "$H_DIR/secret" && printf '%s\n' "$IMAP_MASTER_PASS" >"$H_DIR/secret/imap-pass" &&
    chmod 0600 "$H_DIR/secret/imap-pass"
imap_conf() {
    HS_CONF_EXTRA="imap_url = $POSTLINK_DOMAIN=imap://127.0.0.1:$POSTLINK_IMAP_PORT
imap_password_file = $H_DIR/secret/imap-pass"
}
HP_USERS=dave
if h_start_sink && h_start_dovecot && imap_conf && hm_mirror_setup && hs_setup && hp_wire && hx_start_prosody && hx_setup &&
    h_start_postfix && hs_start && hx_start_xmppd && hx_start_tag; then
    ok "Postfix MX-style port $POSTLINK_SMTP_PORT (strangers), submission port $POSTLINK_SUBMISSION_PORT (SASL)"
    ok "Dovecot IMAP $POSTLINK_IMAP_PORT, POP3 $POSTLINK_POP3_PORT; mail leaving the relay lands in $POSTLINK_SINK_DIR"
    ok "postlink sets message states in the IMAP mailboxes of $POSTLINK_DOMAIN too (imap_url, Dovecot master user)"
    ok "Prosody (XMPP) on $POSTLINK_XMPP_PORT for $POSTLINK_XMPP_DOMAIN"
    ok "postlink-sync, postlink-syncd, postlink-tag and postlink-xmppd running; postlink.conf is $POSTLINK_CONF"
else
    bad "servers did not start"; exit 1
fi
"$CTL" check-config 2>&1 | show && ok "postlinkctl check-config" || bad "check-config"
"$CTL" status 2>&1 | grep -v 'schema upgraded' | show
"$CTL" status --json >/dev/null 2>&1 && ok "store healthy (synchronous write probe passed)" || bad "status"

step "a stranger delivers to bob@$POSTLINK_DOMAIN on the MX port"
swaks --server 127.0.0.1 --port "$POSTLINK_SMTP_PORT" --from stranger@elsewhere.example \
      --to "bob@$POSTLINK_DOMAIN" --header "Subject: hello bob, from outside" \
      --body "Delivered by Postfix over LMTP into Dovecot." >"$H_DIR/swaks1.log" 2>&1
grep -E '^ *<- *250 .*queued' "$H_DIR/swaks1.log" | show
if h_wait_maildir_files bob 1 15; then
    f=$(find "$POSTLINK_MAILDIR" -path '*bob*' -type f \( -path '*/new/*' -o -path '*/cur/*' \) | head -1)
    ok "in bob's mailbox: ${f#$H_DIR/}"
    grep -E '^(Subject|From|To):' "$f" | show
else
    bad "nothing reached bob's mailbox"
fi

step "the same stranger tries to relay elsewhere and is refused"
swaks --server 127.0.0.1 --port "$POSTLINK_SMTP_PORT" --from stranger@elsewhere.example \
      --to friend@remote.example >"$H_DIR/swaks2.log" 2>&1
if grep -qE '^ *<\*\* *5[0-9][0-9]' "$H_DIR/swaks2.log"; then
    grep -E '^ *<\*\* *5' "$H_DIR/swaks2.log" | head -1 | show; ok "relay refused"
else
    bad "relay was not refused"
fi

step "$POSTLINK_DEMO_USER logs in on the submission port and mails friend@remote.example"
swaks --server 127.0.0.1 --port "$POSTLINK_SUBMISSION_PORT" --auth PLAIN \
      --auth-user "$POSTLINK_DEMO_USER" --auth-password "$POSTLINK_DEMO_PASS" \
      --from "$POSTLINK_DEMO_USER" --to friend@remote.example \
      --header "Subject: hello from alice" --body "Relayed to the outside world." \
      >"$H_DIR/swaks3.log" 2>&1
grep -E '^ *<- *235|^ *<- *250 .*queued' "$H_DIR/swaks3.log" | show
if h_wait_sink_files 1 15; then
    f=$(h_sink_files | tail -1)
    ok "at the sink: ${f#$H_DIR/}"
    grep -E '^(X-Envelope-From|X-Envelope-To|Subject|From):' "$f" | tr -d '\r' | show
else
    bad "nothing reached the sink"
fi

step "a wrong password is refused"
swaks --server 127.0.0.1 --port "$POSTLINK_SUBMISSION_PORT" --auth PLAIN \
      --auth-user "$POSTLINK_DEMO_USER" --auth-password wrong --to friend@remote.example \
      >"$H_DIR/swaks4.log" 2>&1
grep -qE '^ *<\*\* *535' "$H_DIR/swaks4.log" && ok "535 authentication failed" || bad "wrong password accepted"

. "$TOP/scripts/demo-sync.sh"
. "$TOP/scripts/demo-tag.sh"
. "$TOP/scripts/demo-sip.sh"
. "$TOP/scripts/demo-mirror.sh"
. "$TOP/scripts/demo-push.sh"

printf '\n'
if [ "$MODE" = up ] && [ "$FAILED" = 0 ]; then
    mkdir -p "$TOP/demo"
    h_write_env "$ENVFILE"
    cat >> "$ENVFILE" <<EV
export POSTLINK_CONF=$POSTLINK_CONF
export POSTLINK_DB_HOME=$POSTLINK_DB_HOME
export POSTLINKCTL=$CTL
export H_SYNC=$H_SYNC H_REINJECT_PORT=$H_REINJECT_PORT
export POSTLINK_PUSH_URL=$POSTLINK_PUSH_URL
EV
    h_keep
    echo "demo.sh: everything is up; . demo/env for ports and paths; ./demo.sh down stops it"
    sed 's/^/    /' "$ENVFILE"
    exit 0
fi
if [ "$FAILED" = 0 ]; then
    echo "demo.sh: all $STEP steps worked; stopping everything"
    exit 0
fi
echo "demo.sh: $FAILED check(s) failed; logs kept in $H_DIR"
H_KEEP_DIR=1
exit 1
