#!/usr/bin/env bash
# t_push.sh -- capability 5 end to end through a private Postfix: mail to a
# push user lands in postlink-pushd's store (250 only after the commit), a
# device client (tests/tools/pl-push-client, libcurl) is woken by a held
# /v1/wait, fetches, and acknowledges on its next request (the seed's
# Fig. 5 sequence); asking again gives the same message; one user's device
# cannot see or acknowledge another's mail; storage full; requests that
# are malformed, oversized, concurrent, cut off mid-body or never read;
# a recipient without a device bounces; SIGTERM with a held wait.
set -u
. "${abs_top_srcdir:-.}/tests/integration/tap.sh"
. "$abs_top_srcdir/tests/harness/harness.sh"
. "$abs_top_srcdir/tests/harness/sync.sh"
. "$abs_top_srcdir/tests/harness/push.sh"

h_init || exit 1
HP_USERS="bob carol nodev"
HP_CONF_EXTRA="push_request_timeout = 3s
push_busy_wait = 10s
push_max_connections_per_ip = 32"
h_start_sink && h_start_dovecot && hp_setup && h_start_postfix && hp_start_pushd ||
    { tap_fail "harness starts"; tap_done; exit 1; }
tap_ok "harness with postlink-pushd starts"

D=$POSTLINK_DOMAIN B=bob@$D C=carol@$D
tap_check "device add bob/phone" hp_device "$B" phone
tap_check "device add bob/tablet" hp_device "$B" tablet
tap_check "device add carol/phone" hp_device "$C" phone

field() { sed -n "s/.*$1=\([^ ]*\).*/\1/p" <<<"$2"; }
queue_json() { "$POSTLINKCTL" push queue "$1" --json; }
# state of message ID for DEVICE in USER's queue
qstate() { queue_json "$1" | jq -r --arg id "$2" --arg d "$3" \
    '.messages[] | select(.id == $id) | .devices[] | select(.device == $d) | .state'; }

# --- in from Postfix ---------------------------------------------------------
hp_send "$B" "first of two" --body "body one"
hp_send "$B" "second of two" --body "body two"
tap_check "two messages to bob via Postfix are stored" hp_wait_stored 2
tap_check "Postfix logged them delivered to postlink-pushd (250 after the commit)" \
    sh -c "test \$(grep -c 'status=sent (250 2.0.0 <$B> stored as' '$H_DIR/postfix/maillog') -ge 2"
q=$(queue_json "$B")
ID1=$(jq -r '.messages[0].id' <<<"$q") ID2=$(jq -r '.messages[1].id' <<<"$q")
tap_check "push queue lists both, waiting for both devices" \
    jq_true '(.messages | length) == 2 and ([.messages[].devices[].state] | unique) == ["waiting"]' "$q"

# --- Fig. 5 ------------------------------------------------------------------
r=$(hp_client "$B" phone get first --out "$H_DIR/m1")
tap_check "get(first) -> message 1, next 2" test "$(field id "$r") $(field next "$r") $(field status "$r")" = "$ID1 $ID2 200"
tap_check "... its body is the mail Postfix delivered" grep -q "^Subject: first of two" "$H_DIR/m1"
tap_check "... not acknowledged yet: sent" test "$(qstate "$B" "$ID1" phone)" = sent
r=$(hp_client "$B" phone get first)
tap_check "asking again for the unacknowledged message gives the same one" test "$(field id "$r")" = "$ID1"
r=$(hp_client "$B" phone get "$ID2" --ack "$ID1" --out "$H_DIR/m2")
tap_check "get(2)+ack(1) -> message 2, next none" test "$(field id "$r") $(field next "$r")" = "$ID2 none"
tap_check "... message 2's body" grep -q "^Subject: second of two" "$H_DIR/m2"
tap_check "... message 1 deleted for the phone" test "$(qstate "$B" "$ID1" phone)" = acked
tap_check "... and still waiting for the tablet" test "$(qstate "$B" "$ID1" tablet)" = waiting
r=$(hp_client "$B" phone ack "$ID2")
tap_check "ack(2) -> 204" test "$(field status "$r")" = 204
tap_check "... message 2 deleted for the phone" test "$(qstate "$B" "$ID2" phone)" = acked
r=$(hp_client "$B" phone ack "$ID2")
tap_check "a repeated ack changes nothing and answers 204" test "$(field status "$r")" = 204
r=$(hp_client "$B" phone get first)
tap_check "the phone has nothing left: 204, next none" test "$(field status "$r") $(field next "$r")" = "204 none"

# --- one user's device cannot see or ack another's -------------------------
r=$(hp_client "$C" phone get "$ID1")
tap_check "carol's device asking for bob's message: 404, nothing sent" \
    test "$(field status "$r") $(field id "$r")" = "404 -"
r=$(hp_client "$C" phone ack "$ID1")
tap_check "carol's device acknowledging bob's message: 409 ack-unknown (not told it exists)" \
    test "$(field status "$r") $(field error "$r")" = "409 ack-unknown"
r=$(hp_client "$B" tablet ack "$ID1")
tap_check "bob's tablet acknowledging a message never sent to it: 409 ack-not-sent" \
    test "$(field status "$r") $(field error "$r")" = "409 ack-not-sent"
r=$(hp_client "$B" tablet get first --ack 0123456789abcdef0123456789abcdef)
tap_check "an unknown ack refuses the whole request (nothing sent)" \
    test "$(field status "$r") $(field id "$r")" = "409 -"
tap_check "... and the tablet's queue is unchanged (both waiting)" \
    test "$(qstate "$B" "$ID1" tablet) $(qstate "$B" "$ID2" tablet)" = "waiting waiting"
tok=$(cat "$H_DIR/token-$B-tablet")
r=$("$HP_CLIENT" --url "$POSTLINK_PUSH_URL" --token "${tok%%.*}.$(printf '0%.0s' {1..64})" get first)
tap_check "a token with the wrong secret: 401" test "$(field status "$r")" = 401
code=$(curl -s -o /dev/null -w '%{http_code}' "$POSTLINK_PUSH_URL/v1/fetch?get=first")
tap_check "no token: 401" test "$code" = 401
hdr=$(curl -s -D - -o /dev/null "$POSTLINK_PUSH_URL/v1/fetch?get=first" | tr -d '\r')
tap_check "... with WWW-Authenticate: Bearer" grep -q '^WWW-Authenticate: Bearer' <<<"$hdr"
tap_check "pushd logged the refused token by its selector only" \
    sh -c "grep -q 'unknown device token (selector ${tok%%.*})' '$H_SYNC/pushd.log' && ! grep -q '${tok#*.}' '$H_SYNC/pushd.log'"

# --- malformed and oversized requests ---------------------------------------
auth="Authorization: Bearer $tok"
st() { curl -s -o /dev/null -w '%{http_code}' -H "$auth" "$@"; }
tap_check "get=xyz: 400" test "$(st "$POSTLINK_PUSH_URL/v1/fetch?get=xyz")" = 400
tap_check "an unknown argument: 400" test "$(st "$POSTLINK_PUSH_URL/v1/fetch?get=first&gte=1")" = 400
tap_check "disp=keep: 400" test "$(st "$POSTLINK_PUSH_URL/v1/fetch?ack=$ID1&disp=keep")" = 400
tap_check "get= twice: 400" test "$(st "$POSTLINK_PUSH_URL/v1/fetch?get=first&get=$ID1")" = 400
tap_check "POST /v1/fetch: 405" test "$(st -X POST "$POSTLINK_PUSH_URL/v1/fetch?get=first")" = 405
tap_check "an unknown path: 404" test "$(st "$POSTLINK_PUSH_URL/v1/feed")" = 404
long=$(head -c 40000 /dev/zero | tr '\0' a)
code=$(st "$POSTLINK_PUSH_URL/v1/fetch?get=$long")
tap_check "a 40 kB request line: refused with 4xx (got $code)" test "${code:0:1}" = 4
code=$(st -H "X-Big: $long" "$POSTLINK_PUSH_URL/v1/fetch?get=first")
tap_check "a 40 kB header: refused with 4xx (got $code)" test "${code:0:1}" = 4
code=$(head -c 2000000 /dev/zero | curl -s -o /dev/null -w '%{http_code}' -H "$auth" -X GET \
    --data-binary @- "$POSTLINK_PUSH_URL/v1/fetch?get=first")
tap_check "a GET with a 2 MB body: 400 before the body is read (got $code)" test "$code" = 400
code=$(head -c 300000 /dev/zero | curl -s -o /dev/null -w '%{http_code}' -H "$auth" \
    --data-binary @- "$POSTLINK_PUSH_URL/v1/subscription")
tap_check "a subscription declared 300 kB long: 413 (got $code)" test "$code" = 413
tap_check "... and the tablet's queue is still unchanged" \
    test "$(qstate "$B" "$ID1" tablet) $(qstate "$B" "$ID2" tablet)" = "waiting waiting"

# --- storage full ------------------------------------------------------------
r=$(hp_client "$B" tablet get first --room 10)
tap_check "room=10 bytes: 507 storage-full naming message 1" \
    test "$(field status "$r") $(field error "$r") $(field id "$r")" = "507 storage-full $ID1"
tap_check "... nothing sent" test "$(qstate "$B" "$ID1" tablet)" = waiting
r=$(hp_client "$B" tablet get first)
tap_check "the device that reported no room is sent nothing until it reports room" \
    test "$(field status "$r")" = 507
r=$(hp_client "$B" tablet get first --room 1000000 --slots 1)
tap_check "room reported: message 1 sent" test "$(field status "$r") $(field id "$r")" = "200 $ID1"
r=$(hp_client "$B" tablet get "$ID2" --ack "$ID1")
tap_check "one slot was used: message 2 does not fit (507)" \
    test "$(field status "$r") $(field id "$r")" = "507 $ID2"
tap_check "... the ack still applied: acknowledged by both devices, message 1 is gone" \
    jq_true "[.messages[] | select(.id == \"$ID1\")] | length == 0" "$(queue_json "$B")"
r=$(hp_client "$B" tablet get first --slots 5 --room 1000000)
tap_check "more room: message 2" test "$(field status "$r") $(field id "$r")" = "200 $ID2"
hp_client "$B" tablet ack "$ID2" >/dev/null
tap_check "both messages acknowledged by both devices: the store forgot them" \
    jq_true '(.messages | length) == 0' "$(queue_json "$B")"

# --- a held wait is woken by new mail ------------------------------------------
hp_client "$B" phone wait --timeout 30 >"$H_DIR/wait.out" &
wpid=$!
tap_check "the wait is held" hp_until_held
hp_send "$B" "wake up" --body "wake"
wait $wpid
r=$(cat "$H_DIR/wait.out")
tap_check "the held wait returned 200 when the mail came (not its 30 s timeout)" \
    test "$(field status "$r")" = 200
ID3=$(field next "$r")
tap_check "... naming the new message" test "$(qstate "$B" "$ID3" phone)" = waiting
r=$(hp_client "$C" phone wait --timeout 1)
tap_check "a wait with nothing waiting ends with 204 at its timeout" test "$(field status "$r")" = 204

# --- cut off mid-body, never read ----------------------------------------------
# an 8 MB message, larger than the socket buffers: the server is still writing
# when the client goes.  (The tablet reported its room above: it is held to
# what is left of it until it reports again, so these requests report room.)
head -c 6000000 /dev/urandom | base64 -w 76 >"$H_DIR/big.txt"
hp_send "$B" "big one" --body @"$H_DIR/big.txt"
tap_check "an 8 MB message is stored" hp_wait_stored 4 60
q=$(queue_json "$B")
ID4=$(jq -r '.messages[] | select(.size > 7000000) | .id' <<<"$q")
python3 - "$HP_HTTP_PORT" "$(cat "$H_DIR/token-$B-tablet")" "$ID4" <<'PY' >"$H_DIR/cut.out" 2>&1
import socket, sys
port, tok, mid = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("127.0.0.1", port))
s.sendall(("GET /v1/fetch?get=%s&room=100000000&slots=100 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n" % (mid, tok)).encode())
got = s.recv(4096)
print(got.split(b"\r\n")[0].decode())
s.close()
PY
tap_check "a device that disconnects after the headers got a 200 line" grep -q "200" "$H_DIR/cut.out"
tap_check "... pushd noticed the response did not go out in full" \
    hs_wait_log "$H_SYNC/pushd.log" "with $ID4 did not go out in full" 10
tap_check "... the message is not marked sent to it" test "$(qstate "$B" "$ID4" tablet)" = waiting
python3 - "$HP_HTTP_PORT" "$(cat "$H_DIR/token-$B-tablet")" "$ID4" <<'PY' >"$H_DIR/stall.out" 2>&1 &
import socket, sys, time
port, tok, mid = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("127.0.0.1", port))
s.sendall(("GET /v1/fetch?get=%s&room=100000000&slots=100 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n" % (mid, tok)).encode())
print("sent", flush=True)
time.sleep(12)     # never reads: the server's push_request_timeout (3 s) must end it
PY
spid=$!
hs_wait_log "$H_DIR/stall.out" sent 10
r=$(hp_client "$B" tablet get "$ID4" --out "$H_DIR/m4" --room 100000000 --slots 100)
tap_check "a fetch of the same device waits for the stalled one to time out, then gets the message" \
    test "$(field status "$r") $(field id "$r")" = "200 $ID4"
tap_check "... all 8 MB of it" test "$(stat -c %s "$H_DIR/m4")" -gt 8000000
kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null
hp_client "$B" tablet ack "$ID4" >/dev/null
tap_check "the tablet acknowledged it: deleted for the tablet" test "$(qstate "$B" "$ID4" tablet)" = acked

# --- concurrent drains of one device -------------------------------------------
pids=""
for i in $(seq 1 20); do hp_send "$C" "conc $i" --body "c$i" & pids="$pids $!"; done
wait $pids
tap_check "20 messages to carol stored" hp_wait_stored 24 60
pids=""
for i in 1 2 3 4; do
    mkdir -p "$H_DIR/conc$i"
    hp_client "$C" phone drain --dir "$H_DIR/conc$i" >"$H_DIR/conc$i.out" 2>&1 &
    pids="$pids $!"
done
wait $pids
n=$(ls "$H_DIR"/conc[1-4]/*.eml | xargs -n1 basename | sort -u | wc -l)
tap_check "four concurrent drains of one device: 20 distinct messages between them (got $n)" test "$n" = 20
dels=$(grep -c "device $C/phone: deleted " "$H_SYNC/pushd.log")
dup=$(grep "device $C/phone: deleted " "$H_SYNC/pushd.log" | awk '{print $NF}' | sort | uniq -d | wc -l)
tap_check "... each acknowledged once ($dels acks, $dup twice)" test "$dels $dup" = "20 0"
tap_check "... carol's queue is empty" jq_true '(.messages | length) == 0' "$(queue_json "$C")"
tap_check "... no request was answered 5xx" sh -c "! grep -h 'status=5' '$H_DIR'/conc[1-4].out"

# --- one address cannot take every connection (push_max_connections_per_ip) -------
python3 - "$HP_HTTP_PORT" >"$H_DIR/perip.out" 2>&1 <<'PY'
import socket, sys, time
port = int(sys.argv[1])
socks = []
for i in range(40):                      # idle: no request, no token
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(0.5)
    socks.append(s)
time.sleep(0.5)
closed = 0
for s in socks:
    try:
        if s.recv(1) == b"":
            closed += 1
    except ConnectionResetError:
        closed += 1
    except socket.timeout:
        pass
print("closed", closed)
for s in socks:
    s.close()
PY
# (at least the 8 over the limit are closed; connections of earlier
# clients the server has not reaped yet count against it too)
n=$(sed -n 's/^closed //p' "$H_DIR/perip.out")
tap_check "40 idle connections from one address: at least the 8 over push_max_connections_per_ip (32) are closed, not all ($n)" \
    test "${n:-0}" -ge 8 -a "${n:-40}" -lt 40
r=$(hp_client "$C" phone get first)
tap_check "... and a device is served again once they are gone" test "$(field status "$r")" = 204

# --- a device written from postlink-pushd(8) alone: curl and sh -------------------
# (no postlink code on the device's side: the headers and statuses the
# manual names are all it uses)
for i in 1 2 3; do hp_send "$C" "curl $i" --body "curl$i"; done
tap_check "three more messages for carol stored" hp_wait_stored 27 30
curl_drain() {   # the piggy-backed loop with curl: prints one line per request
    local tok get=first ack="" q h st id next n=0
    tok=$(cat "$H_DIR/token-$C-phone")
    while :; do
        q="get=$get${ack:+&ack=$ack}"
        [ -z "$get" ] && q="ack=$ack"
        h=$(curl -s -D - -o "$H_DIR/curl.$n.eml" -H "Authorization: Bearer $tok" \
            "$POSTLINK_PUSH_URL/v1/fetch?$q" | tr -d '\r')
        st=$(sed -n '1s/^HTTP\/[0-9.]* \([0-9]*\).*/\1/p' <<<"$h")
        id=$(sed -n 's/^Postlink-Id: //Ip' <<<"$h")
        next=$(sed -n 's/^Postlink-Next: //Ip' <<<"$h")
        echo "$q $st"
        n=$((n + 1))
        [ "$st" = 200 ] || break
        ack=$id
        if [ "$next" = none ]; then get=""; else get=$next; fi
        [ $n -gt 10 ] && break
    done
}
out=$(curl_drain)
tap_check "curl drains three messages in four requests, the last ack-only answered 204" \
    test "$(awk '{print $2}' <<<"$out" | tr '\n' ' ')" = "200 200 200 204 "
tap_check "... the three bodies" \
    test "$(cat "$H_DIR"/curl.[0-2].eml | grep -c '^Subject: curl [123]')" = 3
tap_check "... and carol's queue is empty again" jq_true '(.messages | length) == 0' "$(queue_json "$C")"

# --- a recipient without a device ------------------------------------------------
hp_send "nodev@$D" "to nowhere" --body x
tap_check "mail to a push user without a device is refused (550 5.1.1) and bounced by Postfix" \
    hs_wait_log "$H_DIR/postfix/maillog" "nodev@$D.*status=bounced.*no push device" 20

# --- SIGTERM with a held wait ------------------------------------------------------
hp_client "$C" phone wait --timeout 60 >"$H_DIR/wait2.out" &
wpid=$!
tap_check "a wait is held" hp_until_held
kill -TERM "$HP_PUSHD_PID"
wait $wpid
r=$(cat "$H_DIR/wait2.out")
tap_check "SIGTERM answers a held wait 503 (come back), at once" test "$(field status "$r")" = 503
end=$(( $(h__ms) + 10000 ))
while h__alive "$HP_PUSHD_PID" && [ "$(h__ms)" -lt $end ]; do sleep 0.05; done
tap_check "postlink-pushd exits after SIGTERM" sh -c "! kill -0 $HP_PUSHD_PID 2>/dev/null"
tap_check "... with its stopping line" grep -q "stopping" "$H_SYNC/pushd.log"

# --- TLS -------------------------------------------------------------------------
out=$("$abs_top_builddir/agents/push/postlink-pushd" -n -o push_http_listen=inet:8025@0.0.0.0 2>&1)
rc=$?
tap_check "a push_http_listen that is not loopback, without TLS: configuration error 78" test $rc = 78
tap_check "... saying why" grep -q "not a loopback address" <<<"$out"
h_make_certs "$H_DIR/tls"
hp_start_pushd -o "push_tls_cert_file=$H_DIR/tls/server.pem" -o "push_tls_key_file=$H_DIR/tls/server.key" ||
    tap_fail "postlink-pushd starts with TLS"
tap_check "... and says https" grep -q "(devices, https)" "$H_SYNC/pushd.log"
hp_send "$C" "over tls" --body "tls"
tap_check "a message for carol is stored" hp_wait_stored 28 30
name=server.$POSTLINK_DOMAIN
r=$("$HP_CLIENT" --url "https://$name:$HP_HTTP_PORT" --resolve "$name:$HP_HTTP_PORT:127.0.0.1" \
    --cacert "$H_DIR/tls/server.pem" --token-file "$H_DIR/token-$C-phone" get first --out "$H_DIR/tls.eml")
tap_check "the device fetches it over TLS, the certificate checked" test "$(field status "$r")" = 200
tap_check "... its body" grep -q "^Subject: over tls" "$H_DIR/tls.eml"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $(cat "$H_DIR/token-$C-phone")" \
    "http://127.0.0.1:$HP_HTTP_PORT/v1/fetch?get=first")
tap_check "plain HTTP to the TLS port gets no answer ($code)" test "$code" = 000

h_stop_all
tap_done
