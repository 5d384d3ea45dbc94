# push.sh -- harness additions for capability 5 (push delivery), sourced
# after harness.sh and sync.sh: postlink-pushd with its LMTP socket wired
# into the private Postfix for the push users (transport_maps), its device
# API on a free loopback port, and helpers for devices and the device
# client (tests/tools/pl-push-client).  Call hp_setup instead of hs_setup
# (it calls it; hp_wire alone adds push to an hs_setup that keeps the sync
# milter), before h_start_postfix; then hp_start_pushd.
#   HP_USERS        local parts delivered to postlink-pushd (default: bob)
#   HP_CONF_EXTRA   more postlink.conf lines
#   POSTLINK_PUSH_URL  the device API's base URL (http://127.0.0.1:PORT)
#   HP_PUSHD_PID    postlink-pushd's pid; its log is $H_SYNC/pushd.log

hp_setup() {
    hs_setup && hp_wire || return 1
    # the push tests run without the sync milter: mail must not tempfail
    # for want of it (hs_setup's line is replaced, not overridden: Postfix
    # would warn about the second one in every process's log)
    H_POSTFIX_MAIN_EXTRA=$(sed '/^smtpd_milters *=/d' <<<"$H_POSTFIX_MAIN_EXTRA")
    H_POSTFIX_MAIN_EXTRA="$H_POSTFIX_MAIN_EXTRA
smtpd_milters ="
}

# hp_wire: after hs_setup (its postlink.conf, store and Postfix wiring),
# before h_start_postfix: postlink-pushd's settings and the push users'
# transport (the sync pseudo-domain's stays).
hp_wire() {
    HP_HTTP_PORT=$(h_free_port) || return 1
    export HP_HTTP_PORT POSTLINK_PUSH_URL=http://127.0.0.1:$HP_HTTP_PORT
    export HP_CLIENT=$abs_top_builddir/tests/tools/pl-push-client
    cat >>"$POSTLINK_CONF" <<CONF
# --- tests/harness/push.sh
push_lmtp_socket = $H_SYNC/pushd.sock
push_http_listen = inet:$HP_HTTP_PORT@127.0.0.1
${HP_CONF_EXTRA-}
CONF
    local u map="sync.postlink.invalid=lmtp:unix:$H_SYNC/syncd.sock"
    for u in ${HP_USERS:-bob}; do
        case " $H_USERS " in *" $u "*) ;; *) H_USERS="$H_USERS $u" ;; esac
        map="$map, $u@$POSTLINK_DOMAIN=lmtp:unix:$H_SYNC/pushd.sock"
    done
    export H_USERS
    # one transport_maps line (hs_setup's, with the sync pseudo-domain) is
    # rewritten, not followed by a second one
    H_POSTFIX_MAIN_EXTRA=$(sed '/^transport_maps *=/d' <<<"$H_POSTFIX_MAIN_EXTRA")
    H_POSTFIX_MAIN_EXTRA="$H_POSTFIX_MAIN_EXTRA
transport_maps = inline:{ $map }
lmtp_destination_recipient_limit = 1"
}

# hp_start_pushd [OPTIONS...]: start (again) postlink-pushd and wait for
# its start line.
hp_start_pushd() {
    local n end
    n=$(grep -c 'postlink-pushd .* listening on' "$H_SYNC/pushd.log" 2>/dev/null) || n=0
    h_spawn pushd "$H_SYNC/pushd.log" env ${HP_PUSHD_ENV-} \
        "$abs_top_builddir/agents/push/postlink-pushd" -f "$@"
    HP_PUSHD_PID=$H_LAST_PID
    end=$(( $(h__ms) + 30000 ))          # readiness (a recovery after a kill -9), not speed
    until [ "$(grep -c 'postlink-pushd .* listening on' "$H_SYNC/pushd.log" 2>/dev/null)" -gt "$n" ]; do
        h__alive "$HP_PUSHD_PID" || { h__say "postlink-pushd died:"; tail -n 5 "$H_SYNC/pushd.log" >&2; return 1; }
        [ "$(h__ms)" -ge $end ] && { h__say "postlink-pushd did not start"; return 1; }
        sleep 0.02
    done
}

# hp_device USER NAME: add a device; its token in $H_DIR/token-USER-NAME.
hp_device() {
    "$POSTLINKCTL" push device add "$1" "$2" 2>/dev/null | sed -n 's/^token: //p' \
        >"$H_DIR/token-$1-$2"
    [ -s "$H_DIR/token-$1-$2" ]
}

# hp_client USER NAME ARGS...: the device client as USER's device NAME.
hp_client() {
    local u=$1 n=$2
    shift 2
    "$HP_CLIENT" --url "$POSTLINK_PUSH_URL" --token-file "$H_DIR/token-$u-$n" "$@"
}

# hp_send TO SUBJECT [swaks options...]: one message from a stranger on
# the MX port.
hp_send() {
    local to=$1 subj=$2
    shift 2
    swaks --server 127.0.0.1 --port "$POSTLINK_SMTP_PORT" --from "sender@remote.invalid" \
        --to "$to" --header "Subject: $subj" --timeout 20 --suppress-data "$@" >/dev/null 2>&1
}

# hp_until_held: until a device connection to pushd is established (a held
# wait), at most 10 s; 1 when none came.
hp_until_held() {
    local end=$(( $(h__ms) + 10000 ))
    until [ "$(ss -Htn state established "( sport = :$HP_HTTP_PORT )" | grep -c .)" -ge 1 ]; do
        [ "$(h__ms)" -ge $end ] && return 1
        sleep 0.02
    done
}

# hp_queue_count USER STATE: messages of USER in state STATE for any
# device (waiting|sent|moved|acked), from postlinkctl push queue --json.
hp_queue_len() { "$POSTLINKCTL" push queue "$1" --json | jq '.messages | length'; }

# hp_wait_stored N [TIMEOUT]: until pushd logged N stored messages.
hp_wait_stored() {
    local end=$(( $(h__ms) + ${2:-20} * 1000 )) c
    while :; do
        c=$(grep -c ': stored [0-9a-f]\{32\} ' "$H_SYNC/pushd.log" 2>/dev/null) || c=0
        [ "$c" -ge "$1" ] && return 0
        [ "$(h__ms)" -ge $end ] && { h__say "timeout: $c message(s) stored, wanted $1"; h_diag; return 1; }
        sleep 0.05
    done
}
