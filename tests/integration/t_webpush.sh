#!/usr/bin/env bash
# t_webpush.sh -- lib/webpush.c and lib/webpush_send.c (through
# tests/tools/pl-webpush) against a third-party mock push service, the npm
# package web-push-testing (tests/node, installed by scripts/install-deps.sh)
# on 127.0.0.1: a subscription made through its API with our VAPID public
# key as applicationServerKey; our message accepted (201), its VAPID token
# verified and its aes128gcm body decrypted by the service to exactly what
# was sent (also read through PushSubscription JSON, the largest payload,
# UTF-8); another VAPID key and another auth secret refused; an expired
# subscription answered 410 (gone); no service, 75 (later); bad topic,
# urgency, payload size refused before anything is sent; and, sent by hand
# with curl, a token whose signature was changed or that has expired is
# refused (the service does verify it).
# Needs root (the harness's temp dir), node, curl, jq.
set -u
: "${abs_top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${abs_top_builddir:=$abs_top_srcdir}"
. "$abs_top_srcdir/tests/integration/tap.sh"
. "$abs_top_srcdir/tests/harness/harness.sh"

W=$abs_top_builddir/tests/tools/pl-webpush
NODE_DIR=$abs_top_srcdir/tests/node
[ -x "$W" ] || { tap_fail "pl-webpush not built: $W"; tap_done; exit 1; }
command -v node >/dev/null && [ -d "$NODE_DIR/node_modules/web-push-testing" ] ||
    { tap_fail "web-push-testing not installed (scripts/install-deps.sh: npm ci --prefix tests/node)"; tap_done; exit 1; }
h_init || { tap_fail "harness init (needs root)"; tap_done; exit 1; }

# The mock push service on a free loopback port, stopped by PID at exit.
h_spawn web-push-testing "$H_DIR/wpt.log" node "$NODE_DIR/wpt-server.js" 0
WPT_PID=$H_LAST_PID
PORT=
for _ in $(seq 100); do
    PORT=$(sed -n 's/^listening \([0-9]*\)$/\1/p' "$H_DIR/wpt.log")
    [ -n "$PORT" ] && break
    h__alive "$WPT_PID" || break
    sleep 0.1
done
[ -n "$PORT" ] || { tap_fail "web-push-testing starts"; sed 's/^/#   /' "$H_DIR/wpt.log"; tap_done; exit 1; }
SVC=http://127.0.0.1:$PORT
tap_diag "web-push-testing pid $WPT_PID on $SVC"

# api PATH [JSON]: POST to the service's API; the body in $out, status in $code
api() {
    local resp data='{}'
    [ $# -ge 2 ] && data=$2
    resp=$(curl -s --max-time 10 -X POST -H 'Content-Type: application/json' \
        -d "$data" -w '\n%{http_code}' "$SVC$1")
    code=${resp##*$'\n'}
    out=${resp%$'\n'*}
}
# send ARGS...: pl-webpush send; stdout in $out, stderr in $errout, exit in $rc
send() {
    out=$("$W" send --subject mailto:postmaster@postlink.test "$@" 2>"$H_DIR/err"); rc=$?
    errout=$(cat "$H_DIR/err")
}
check() {
    local desc=$1; shift
    if "$@"; then tap_ok "$desc"; else
        tap_fail "$desc"; printf 'out: %s\nerr: %s\n' "$out" "${errout-}" | sed 's/^/#   /'
    fi
}
messages() { api /get-notifications "{\"clientHash\":\"$HASH\"}"; msgs=$out; }
# got N [TEXT]: the service holds N messages, the last one TEXT
got() {
    jq -e --argjson n "$1" '(.data.messages | length) == $n' >/dev/null 2>&1 <<<"$msgs" &&
        { [ $# -lt 2 ] || [ "$(jq -j '.data.messages[-1]' <<<"$msgs")" = "$2" ]; }
}

api /status
check "the service answers /status with 200" [ "$code" = 200 ]

# Our VAPID key, and a subscription that names it as applicationServerKey.
PUB=$("$W" genkey "$H_DIR/vapid.pem")
check "genkey writes a key (mode 600) and prints its public key" \
    eval '[ ${#PUB} = 87 ] && [ "$(stat -c %a "$H_DIR/vapid.pem")" = 600 ] &&
          [ "$("$W" pubkey "$H_DIR/vapid.pem")" = "$PUB" ]'
api /subscribe "{\"applicationServerKey\":\"$PUB\"}"
SUB=$out
EP=$(jq -r .data.endpoint <<<"$SUB"); P256DH=$(jq -r .data.keys.p256dh <<<"$SUB")
AUTH=$(jq -r .data.keys.auth <<<"$SUB"); HASH=$(jq -r .data.clientHash <<<"$SUB")
check "subscribe: an endpoint on 127.0.0.1 and the device's keys" \
    eval '[ "$code" = 200 ] && [[ $EP == "$SVC/notify/"* ]] && [ ${#P256DH} = 87 ] && [ ${#AUTH} = 22 ]'
jq .data <<<"$SUB" >"$H_DIR/sub.json"

# 1. A message: accepted, VAPID verified, decrypted to what was sent.
MSG1="You have new mail ($$.$RANDOM)"
send --vapid-key "$H_DIR/vapid.pem" --endpoint "$EP" --p256dh "$P256DH" --auth "$AUTH" \
    --topic new-mail --ttl 60 --urgency high --payload "$MSG1"
check "send: 201, sent (exit 0)" eval '[ $rc = 0 ] && [ "$out" = "201 sent" ]'
messages
check "the service decrypted exactly the message sent" got 1 "$MSG1"

# 2. The subscription as PushSubscription JSON (the service's own form,
# with its extra clientHash), a UTF-8 payload with quotes and a newline.
MSG2=$'Neue E-Mail von \xc3\x84rger "Gr\xc3\xbc\xc3\x9fe"\nline 2'
send --vapid-key "$H_DIR/vapid.pem" --subscription "$H_DIR/sub.json" --payload "$MSG2"
messages
check "send --subscription (PushSubscription JSON): 201, the UTF-8 payload intact" \
    eval '[ $rc = 0 ] && got 2 "$MSG2"'

# 3. The largest payload one record of 4096 bytes holds.
BIG=$(head -c 3993 /dev/zero | tr '\0' 'x')
send --vapid-key "$H_DIR/vapid.pem" --subscription "$H_DIR/sub.json" --payload "$BIG"
messages
check "a 3993-byte payload: 201, decrypted whole" eval '[ $rc = 0 ] && got 3 "$BIG"'
send --vapid-key "$H_DIR/vapid.pem" --subscription "$H_DIR/sub.json" --payload "${BIG}x"
check "3994 bytes: refused before sending (exit 64)" eval '[ $rc = 64 ] && [[ $errout == *"at most 3993"* ]]'

# 4. Another VAPID key: the service refuses it.
"$W" genkey "$H_DIR/other.pem" >/dev/null
send --vapid-key "$H_DIR/other.pem" --subscription "$H_DIR/sub.json" --payload "not from us"
check "another VAPID key: refused by the service (400, exit 3)" \
    eval '[ $rc = 3 ] && [ "$out" = "400 refused" ] && [[ $errout == *"answered 400"* ]]'

# 5. Another auth secret: the service cannot decrypt it.
send --vapid-key "$H_DIR/vapid.pem" --endpoint "$EP" --p256dh "$P256DH" \
    --auth AAAAAAAAAAAAAAAAAAAAAA --payload "wrong secret"
check "another auth secret: not decryptable, refused (exit 3)" eval '[ $rc = 3 ] && [[ $out == "400 refused" ]]'
messages
check "nothing refused reached the device's messages" got 3

# 6. Checked before sending: topic, urgency.
send --vapid-key "$H_DIR/vapid.pem" --subscription "$H_DIR/sub.json" --topic "new mail" --payload x
check "a topic with a space: exit 64" eval '[ $rc = 64 ] && [[ $errout == *topic* ]]'
send --vapid-key "$H_DIR/vapid.pem" --subscription "$H_DIR/sub.json" \
    --topic abcdefghijklmnopqrstuvwxyz0123456 --payload x
check "a topic of 33 characters: exit 64" eval '[ $rc = 64 ]'
send --vapid-key "$H_DIR/vapid.pem" --subscription "$H_DIR/sub.json" --urgency urgent --payload x
check "an unknown urgency: exit 64" eval '[ $rc = 64 ] && [[ $errout == *urgency* ]]'
messages
check "none of them reached the service" got 3

# 7. The subscription expires: 410, gone.
api "/expire-subscription/$HASH"
check "the service expires the subscription" [ "$code" = 200 ]
send --vapid-key "$H_DIR/vapid.pem" --subscription "$H_DIR/sub.json" --payload "too late"
check "an expired subscription: 410, gone (exit 2)" eval '[ $rc = 2 ] && [ "$out" = "410 gone" ]'

# 8. No service on the port: no status, try later.
DEAD=$(h_free_port)
send --vapid-key "$H_DIR/vapid.pem" --endpoint "http://127.0.0.1:$DEAD/notify/x" \
    --p256dh "$P256DH" --auth "$AUTH" --payload x --timeout-ms 3000
check "no service: status 0, later (exit 75)" eval '[ $rc = 75 ] && [ "$out" = "0 later" ]'

# 9. The pieces by hand (pl-webpush header / encrypt, curl POSTs): the
# service really checks the token -- accepted as made, refused when its
# signature is changed or it has expired.
api /subscribe "{\"applicationServerKey\":\"$PUB\"}"
SUB2=$out
EP=$(jq -r .data.endpoint <<<"$SUB2"); P256DH=$(jq -r .data.keys.p256dh <<<"$SUB2")
AUTH=$(jq -r .data.keys.auth <<<"$SUB2"); HASH=$(jq -r .data.clientHash <<<"$SUB2")
# post AUTHORIZATION BODYFILE: the service's status in $out
post() {
    out=$(curl -s --max-time 10 -o "$H_DIR/answer" -w '%{http_code}' -X POST -H 'TTL: 60' \
        -H 'Content-Encoding: aes128gcm' -H 'Content-Type: application/octet-stream' \
        -H "Authorization: $1" --data-binary "@$2" "$EP")
    errout=$(cat "$H_DIR/answer")
}
MSG3="by hand $$"
"$W" encrypt --p256dh "$P256DH" --auth "$AUTH" --payload "$MSG3" >"$H_DIR/body"
HDR=$("$W" header --vapid-key "$H_DIR/vapid.pem" --subject mailto:postmaster@postlink.test --endpoint "$EP")
check "encrypt: one record, 86 + payload + 17 bytes; header: vapid t=, k=" \
    eval '[ "$(stat -c %s "$H_DIR/body")" = $((86 + ${#MSG3} + 17)) ] && [[ $HDR == "vapid t="*", k=$PUB" ]]'
post "$HDR" "$H_DIR/body"
st=$out
messages
check "the header and body as made: 201, decrypted" eval '[ "$st" = 201 ] && got 1 "$MSG3"'
# the signature's first character changed (A <-> B keeps it base64url)
sig=${HDR%%, k=*}; sig=${sig##*.}
case $sig in A*) bad=B${sig#?} ;; *) bad=A${sig#?} ;; esac
post "${HDR/$sig/$bad}" "$H_DIR/body"
check "a changed signature: refused (400)" eval '[ "$out" = 400 ] && [[ $errout == *"Invalid authentication token"* ]]'
OLD=$("$W" header --vapid-key "$H_DIR/vapid.pem" --subject mailto:postmaster@postlink.test \
    --endpoint "$EP" --now $(( $(date +%s) - 2 * 86400 )) --exp 3600)
post "$OLD" "$H_DIR/body"
check "a token that expired yesterday: refused (400)" eval '[ "$out" = 400 ] && grep -q "jwt expired" "$H_DIR/wpt.log"'
messages
check "only the good one arrived" got 1 "$MSG3"

h__alive "$WPT_PID" && tap_ok "web-push-testing still running" || tap_fail "web-push-testing died"
tap_done
