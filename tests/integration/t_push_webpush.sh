#!/usr/bin/env bash
# t_push_webpush.sh -- capability 5's Web Push notices end to end: devices
# register subscriptions made at web-push-testing (the npm mock push
# service, tests/node) with POST /v1/subscription, mail goes through the
# private Postfix to postlink-pushd, and the mock -- which checks the VAPID
# token and decrypts the body -- receives the notice naming the waiting
# message, with Topic postlink-mail, Urgency normal and the TTL; two mails
# give notices with the same Topic; a device that does not come is told
# again after push_notify_interval, doubling, push_notify_retries times; a
# device that fetched is told no more; an expired subscription (410) is
# dropped and the device still gets its mail over GET /v1/wait and fetch;
# a push service that does not answer is tried again, bounded, and the
# subscription kept; a restart tells a device with unfetched mail again;
# bad, oversized and unauthenticated registrations are refused; the token
# decides the device; DELETE; a key without a subject is a configuration
# error; and without push_vapid_key_file a registration answers 501.
# Needs root (the harness), node, curl, jq.
set -u
. "${abs_top_srcdir:-.}/tests/integration/tap.sh"
. "$abs_top_srcdir/tests/harness/harness.sh"
. "$abs_top_srcdir/tests/harness/sync.sh"
. "$abs_top_srcdir/tests/harness/push.sh"

NODE_DIR=$abs_top_srcdir/tests/node
command -v node >/dev/null && [ -d "$NODE_DIR/node_modules/web-push-testing" ] ||
    { tap_fail "web-push-testing not installed (scripts/install-deps.sh: npm ci --prefix tests/node)"; tap_done; exit 1; }
h_init || { tap_fail "harness init (needs root)"; tap_done; exit 1; }

# --- the mock push service ---------------------------------------------------------
WPT_LOG=$H_DIR/wpt.log
h_spawn web-push-testing "$WPT_LOG" node "$NODE_DIR/wpt-server.js" 0
WPT_PID=$H_LAST_PID
PORT=
for _ in $(seq 100); do
    PORT=$(sed -n 's/^listening \([0-9]*\)$/\1/p' "$WPT_LOG")
    [ -n "$PORT" ] && break
    h__alive "$WPT_PID" || break
    sleep 0.1
done
[ -n "$PORT" ] || { tap_fail "web-push-testing starts"; sed 's/^/#   /' "$WPT_LOG"; tap_done; exit 1; }
SVC=http://127.0.0.1:$PORT

# --- postlink-pushd with Web Push on ----------------------------------------------
HP_USERS="bob carol dave"
DEAD=$(h_free_port)      # a push service that does not answer (below)
HP_CONF_EXTRA="push_webpush_services = $SVC, http://127.0.0.1:$DEAD
push_vapid_key_file = $H_DIR/vapid.pem
push_vapid_subject = mailto:postmaster@postlink.test
push_notify_interval = 1s
push_notify_retries = 2
push_webpush_ttl = 120s"
h_start_sink && h_start_dovecot && hp_setup || { tap_fail "harness starts"; tap_done; exit 1; }
PUB=$("$POSTLINKCTL" push vapid-key generate "$H_DIR/vapid.pem")
tap_check "postlinkctl push vapid-key generate writes a key (600) and prints its public key" \
    eval '[ ${#PUB} = 87 ] && [ "$(stat -c %a "$H_DIR/vapid.pem")" = 600 ] &&
          [ "$("$POSTLINKCTL" push vapid-key show "$H_DIR/vapid.pem")" = "$PUB" ]'
tap_check "vapid-key generate never replaces a key" \
    eval '! "$POSTLINKCTL" push vapid-key generate "$H_DIR/vapid.pem" 2>/dev/null'
h_start_postfix && hp_start_pushd || { tap_fail "postfix and postlink-pushd start"; tap_done; exit 1; }
tap_check "postlink-pushd says Web Push is on, with the public key" \
    grep -q "Web Push notices on (VAPID key .* public $PUB" "$H_SYNC/pushd.log"

D=$POSTLINK_DOMAIN B=bob@$D C=carol@$D DV=dave@$D
for u in "$B" "$C" "$DV"; do hp_device "$u" phone || tap_fail "device add $u/phone"; done

# mock_sub NAME: a subscription at the mock for our VAPID key, as
# PushSubscription JSON in $H_DIR/sub-NAME.json; its clientHash in HASH_NAME
mock_sub() {
    local out
    out=$(curl -s --max-time 10 -X POST -H 'Content-Type: application/json' \
        -d "{\"applicationServerKey\":\"$PUB\"}" "$SVC/subscribe")
    jq .data <<<"$out" >"$H_DIR/sub-$1.json"
    printf -v "HASH_$1" '%s' "$(jq -r .data.clientHash <<<"$out")"
}
# api METHOD USER [BODYFILE [QUERY]]: /v1/subscription as USER's phone
# ("" = no token); status in $code, body in $body
api() {
    local m=$1 u=$2 f=${3-} q=${4-} a=()
    [ -n "$u" ] && a+=(-H "Authorization: Bearer $(cat "$H_DIR/token-$u-phone")")
    [ -n "$f" ] && a+=(-H 'Content-Type: application/json' --data-binary "@$f")
    code=$(curl -s --max-time 10 -X "$m" "${a[@]}" -o "$H_DIR/api.out" -w '%{http_code}' \
        "$POSTLINK_PUSH_URL/v1/subscription$q")
    body=$(cat "$H_DIR/api.out")
}
# notices HASH: the decrypted payloads the mock holds for HASH (JSON array)
notices() {
    curl -s --max-time 10 -X POST -H 'Content-Type: application/json' \
        -d "{\"clientHash\":\"$1\"}" "$SVC/get-notifications" | jq -c '.data.messages'
}
ncount() { notices "$1" | jq length; }
# wait_notices HASH N [SECONDS]: until the mock holds N notices for HASH
wait_notices() {
    local end=$(( $(h__ms) + ${3:-15} * 1000 ))
    until [ "$(ncount "$1")" -ge "$2" ]; do
        [ "$(h__ms)" -ge $end ] && { h__say "timeout: $(ncount "$1") notice(s) for $1, wanted $2"; return 1; }
        sleep 0.05
    done
}
# hdrs HASH: the mock's log lines for messages to HASH, once there is one
# for each notice it holds (a line is written after the answer went out)
hdrs() {
    local end=$(( $(h__ms) + 5000 )) n
    n=$(ncount "$1")
    while [ "$(grep -c "^notify $1 201 " "$WPT_LOG")" -lt "$n" ] && [ "$(h__ms)" -lt $end ]; do
        sleep 0.05
    done
    grep "^notify $1 " "$WPT_LOG"
}
devlist() { "$POSTLINKCTL" push device list --json; }
webpush_of() { devlist | jq -r --arg u "$1" '.[] | select(.user == $u and .device == "phone") | .webpush'; }
queue_ids() { "$POSTLINKCTL" push queue "$1" --json | jq -r '.messages[].id'; }
gave_up() { grep -c "$1/phone: [0-9]* Web Push notice(s) tried, the device did not come" "$H_SYNC/pushd.log"; }
wait_gave_up() {   # USER N: until pushd logged N times that it stopped for USER's phone
    local end=$(( $(h__ms) + 20000 ))
    until [ "$(gave_up "$1")" -ge "$2" ]; do
        [ "$(h__ms)" -ge $end ] && { h__say "timeout: no end of notices for $1"; return 1; }
        sleep 0.05
    done
}

# --- registration -----------------------------------------------------------------
mock_sub bob; mock_sub carol; mock_sub dave; mock_sub bob2
api POST "" "$H_DIR/sub-bob.json"
tap_check "a registration without a token: 401" test "$code" = 401
echo '{"endpoint":"http://127.0.0.1/x","keys":{"p256dh":' >"$H_DIR/bad.json"
api POST "$B" "$H_DIR/bad.json"
tap_check "malformed JSON: 400 with the parser's reason ($body)" \
    eval '[ "$code" = 400 ] && [ -n "$body" ]'
jq '.keys.p256dh = "AAAA"' "$H_DIR/sub-bob.json" >"$H_DIR/badkey.json"
api POST "$B" "$H_DIR/badkey.json"
tap_check "a p256dh that is no P-256 point: 400 ($body)" eval '[ "$code" = 400 ] && [[ $body == *p256dh* ]]'
jq --arg pad "$(head -c 5000 /dev/zero | tr '\0' x)" '.pad = $pad' "$H_DIR/sub-bob.json" >"$H_DIR/big.json"
api POST "$B" "$H_DIR/big.json"
tap_check "a registration over 4096 bytes: 413" test "$code" = 413
api DELETE "$B"
tap_check "DELETE before any registration: 404" test "$code" = 404
tap_check "... and nothing was registered: webpush false in device list --json" test "$(webpush_of "$B")" = false
api POST "$B" "$H_DIR/sub-bob.json"
tap_check "bob's phone registers its subscription: 201" test "$code" = 201
api POST "$C" "$H_DIR/sub-carol.json"
tap_check "carol's phone registers: 201" test "$code" = 201
api POST "$DV" "$H_DIR/sub-dave.json"
tap_check "dave's phone registers: 201" test "$code" = 201
tap_check "device list --json: webpush true for the three" \
    jq_true '[.[] | select(.device == "phone") | .webpush] == [true, true, true]' "$(devlist)"
api POST "$B" "$H_DIR/sub-carol.json" "?device=phone"
tap_check "a registration naming a device in the URL: 400 (the token decides)" test "$code" = 400

# --- one mail, one notice -----------------------------------------------------------
hp_send "$B" "first" --body "one"
tap_check "mail to bob through Postfix is stored" hp_wait_stored 1
ID1=$(queue_ids "$B" | head -n1)
tap_check "the mock received a Web Push notice for bob's phone" wait_notices "$HASH_bob" 1
n1=$(notices "$HASH_bob" | jq -r '.[0]')
tap_check "... decrypted by the mock: {waiting 1, first = the stored id} ($n1)" \
    eval 'jq -e --arg id "$ID1" ".waiting == 1 and .first == \$id and (keys | sort) == [\"first\", \"waiting\"]" >/dev/null <<<"$n1"'
tap_check "... sent with Topic postlink-mail, Urgency normal, TTL 120, answered 201" \
    eval 'hdrs "$HASH_bob" | head -n1 | grep -q " 201 ms=[0-9]* ttl=120 topic=postlink-mail urgency=normal$"'
tap_check "... carol and dave were told nothing" \
    test "$(ncount "$HASH_carol") $(ncount "$HASH_dave")" = "0 0"

# --- bob does not come: retries, doubling, bounded ---------------------------------
tap_check "bob's phone does not fetch: pushd stops after 1 + push_notify_retries (2) notices" wait_gave_up "$B" 1
tap_check "... the mock holds exactly 3 notices for bob" test "$(ncount "$HASH_bob")" = 3
t=($(hdrs "$HASH_bob" | sed -n 's/.* ms=\([0-9]*\) .*/\1/p'))
g1=$(( t[1] - t[0] )) g2=$(( t[2] - t[1] ))
tap_check "... the retries came after push_notify_interval, then doubled (${g1} ms, ${g2} ms)" \
    eval '[ $g1 -ge 900 ] && [ $g2 -ge 1900 ] && [ $g2 -lt 5000 ]'

# --- two quick mails: notices collapse by Topic -------------------------------------
before=$(ncount "$HASH_bob")
hp_send "$B" "second" --body "two" & p1=$!
hp_send "$B" "third" --body "three" & p2=$!
wait $p1 $p2
tap_check "two more mails to bob stored" hp_wait_stored 3
tap_check "new mail tells bob again at once" wait_notices "$HASH_bob" $((before + 1))
tap_check "... until the retries end again" wait_gave_up "$B" 2
last=$(notices "$HASH_bob" | jq -r '.[-1]')
tap_check "the newest notice counts the three waiting and names the first ($last)" \
    eval 'jq -e --arg id "$ID1" ".waiting == 3 and .first == \$id" >/dev/null <<<"$last"'
tap_check "every notice to bob carries the same Topic (postlink-mail)" \
    test "$(hdrs "$HASH_bob" | sed 's/.* topic=\([^ ]*\) .*/\1/' | sort -u)" = postlink-mail
tap_check "... and no more than 1 + 2 retries per new mail" \
    test "$(ncount "$HASH_bob")" -le $((before + 2 * 3))

# --- the token decides the device ---------------------------------------------------
api POST "$B" "$H_DIR/sub-bob2.json"
tap_check "bob's phone replaces its own subscription (201)" test "$code" = 201
tap_check "... carol's stays (webpush true)" test "$(webpush_of "$C")" = true

# --- bob fetches: no more notices -----------------------------------------------------
hp_send "$B" "fourth" --body "four"
tap_check "a fourth mail to bob stored" hp_wait_stored 4
tap_check "... told to bob's new subscription" wait_notices "$HASH_bob2" 1
mkdir -p "$H_DIR/bobmail"
hp_client "$B" phone drain --dir "$H_DIR/bobmail" >"$H_DIR/drain.out" 2>&1
tap_check "bob's phone drains its four messages" test "$(ls "$H_DIR/bobmail" | wc -l)" = 4
nb=$(ncount "$HASH_bob2") nb_old=$(ncount "$HASH_bob")
hp_send "$C" "marker" --body "m"
tap_check "a mail to carol (the later marker) stored" hp_wait_stored 5
tap_check "carol is told, and told again after push_notify_interval (her phone does not come)" \
    wait_notices "$HASH_carol" 2
tap_check "... meanwhile bob's phone, which fetched, was told nothing more ($nb, $nb_old)" \
    test "$(ncount "$HASH_bob2") $(ncount "$HASH_bob")" = "$nb $nb_old"
CID=$(queue_ids "$C")
tap_check "... and carol's notices, at carol's subscription, name carol's message" \
    eval 'notices "$HASH_carol" | jq -e --arg id "$CID" "[.[] | fromjson | .first] | unique == [\$id]" >/dev/null'
tap_check "... which bob's registration with bob's token did not touch" \
    eval '[ "$(ncount "$HASH_bob2") $(ncount "$HASH_bob")" = "$nb $nb_old" ]'


# --- an expired subscription ----------------------------------------------------------
curl -s --max-time 10 -X POST "$SVC/expire-subscription/$HASH_dave" >/dev/null
hp_send "$DV" "to dave" --body "for dave"
tap_check "mail to dave stored" hp_wait_stored 6
tap_check "the mock answers dave's notice 410; pushd: subscription gone, device stays on long-poll" \
    hs_wait_log "$H_SYNC/pushd.log" "$DV/phone: subscription gone: device stays on long-poll" 15
tap_check "... the 410 is in the mock's log" hs_wait_log "$WPT_LOG" "^notify $HASH_dave 410 " 5
tap_check "... device list --json: webpush false for dave" test "$(webpush_of "$DV")" = false
r=$(hp_client "$DV" phone wait --timeout 5)
tap_check "dave's phone still learns of its mail with GET /v1/wait ($r)" grep -q "status=200" <<<"$r"
r=$(hp_client "$DV" phone get first --out "$H_DIR/dave.eml")
tap_check "... and fetches it" eval 'grep -q "status=200" <<<"$r" && grep -q "^Subject: to dave" "$H_DIR/dave.eml"'

# --- a push service that is not listed: refused -------------------------------------
jq '.endpoint = "http://127.0.0.1:25/notify/x"' "$H_DIR/sub-dave.json" >"$H_DIR/sub-smtp.json"
api POST "$DV" "$H_DIR/sub-smtp.json"
tap_check "a subscription to an origin not in push_webpush_services (127.0.0.1:25): 403" test "$code" = 403
tap_check "... logged" hs_wait_log "$H_SYNC/pushd.log" "refused a Web Push subscription to http://127.0.0.1:25" 5

# --- a push service that does not answer: tried again, bounded ----------------------
jq --arg ep "http://127.0.0.1:$DEAD/notify/nobody" '.endpoint = $ep' "$H_DIR/sub-dave.json" >"$H_DIR/sub-dead.json"
api POST "$DV" "$H_DIR/sub-dead.json"
tap_check "dave's phone registers a subscription at a push service that is down: 201" test "$code" = 201
hp_send "$DV" "to dave again" --body "again"
tap_check "mail to dave stored" hp_wait_stored 7
tap_check "no answer: tried again with backoff, 1 + push_notify_retries times, then no more" wait_gave_up "$DV" 1
tap_check "... each try logged as not delivered (3)" \
    test "$(grep -c "$DV/phone: Web Push notice [0-9] not delivered, trying later" "$H_SYNC/pushd.log")" = 3
tap_check "... the subscription is kept (webpush true)" test "$(webpush_of "$DV")" = true

# --- DELETE ---------------------------------------------------------------------------
api DELETE "$B"
tap_check "bob's phone removes its subscription: 204" test "$code" = 204
api DELETE "$B"
tap_check "... again: 404" test "$code" = 404
tap_check "... webpush false for bob" test "$(webpush_of "$B")" = false

# --- a restart: a device with unfetched mail is told again --------------------------
nc=$(ncount "$HASH_carol")
kill -TERM "$HP_PUSHD_PID"
end=$(( $(h__ms) + 15000 ))
while h__alive "$HP_PUSHD_PID" && [ "$(h__ms)" -lt $end ]; do sleep 0.05; done
tap_check "postlink-pushd stops (SIGTERM)" sh -c "! kill -0 $HP_PUSHD_PID 2>/dev/null"
tap_check "postlink-pushd starts again" hp_start_pushd
tap_check "after the restart carol (unfetched mail, a subscription) gets a notice" \
    wait_notices "$HASH_carol" $((nc + 1))

# --- configuration ----------------------------------------------------------------------
PUSHD=$abs_top_builddir/agents/push/postlink-pushd
out=$("$PUSHD" -n -o push_vapid_subject= 2>&1); rc=$?
tap_check "push_vapid_key_file without push_vapid_subject: a configuration error (78)" \
    eval '[ $rc = 78 ] && [[ $out == *push_vapid_subject* ]]'
out=$("$PUSHD" -n -o push_vapid_subject=postmaster@postlink.test 2>&1); rc=$?
tap_check "... a subject that is not a mailto: or https: URL: the same" \
    eval '[ $rc = 78 ] && [[ $out == *mailto:* ]]'
out=$("$PUSHD" -n 2>&1); rc=$?
tap_check "... the test's own configuration checks OK" eval '[ $rc = 0 ]'
kill -TERM "$HP_PUSHD_PID"
end=$(( $(h__ms) + 15000 ))
while h__alive "$HP_PUSHD_PID" && [ "$(h__ms)" -lt $end ]; do sleep 0.05; done
hp_start_pushd -o push_vapid_key_file= || tap_fail "postlink-pushd starts without a VAPID key"
api POST "$C" "$H_DIR/sub-carol.json"
tap_check "without push_vapid_key_file a registration answers 501 Web Push is not configured" \
    eval '[ "$code" = 501 ] && [[ $body == *"Web Push is not configured"* ]]'

h__alive "$WPT_PID" && tap_ok "web-push-testing still running" || tap_fail "web-push-testing died"
h_stop_all
tap_done
