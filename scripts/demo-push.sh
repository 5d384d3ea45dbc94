# demo-push.sh -- the push delivery story of ./demo.sh (sourced by it):
# dave reads his mail on a phone that postlink-pushd delivers to.  Three
# messages arrive through Postfix; the phone, told by a held /v1/wait,
# fetches them with the acknowledgement of each riding on the request for
# the next: three messages in four requests, each kept in the store until
# the phone said it stored it.
step "push delivery: dave's phone gets three messages in four requests (postlink-pushd)"
P=dave@$POSTLINK_DOMAIN
if hp_start_pushd; then
    ok "postlink-pushd: LMTP from Postfix on $H_SYNC/pushd.sock, devices at $POSTLINK_PUSH_URL"
else
    bad "postlink-pushd did not start"
fi
"$CTL" push device add "$P" phone 2>/dev/null | sed -n 's/^token: //p' >"$H_DIR/token-$P-phone"
if [ -s "$H_DIR/token-$P-phone" ]; then
    ok "postlinkctl push device add $P phone: a token, shown once (stored hashed)"
else
    bad "no device token"
fi
"$HP_CLIENT" --url "$POSTLINK_PUSH_URL" --token-file "$H_DIR/token-$P-phone" wait --timeout 30 \
    >"$H_DIR/demo-wait.out" 2>&1 &
dwait=$!
for i in 1 2 3; do
    swaks --server 127.0.0.1 --port "$POSTLINK_SMTP_PORT" --from "friend$i@elsewhere.example" \
        --to "$P" --header "Subject: push message $i" --body "Message $i for dave's phone." \
        >"$H_DIR/push-swaks$i.log" 2>&1
done
wait "$dwait"
if grep -q '^status=200' "$H_DIR/demo-wait.out"; then
    ok "the phone's held GET /v1/wait returned when the first message was committed"
else
    bad "the held wait did not return 200: $(cat "$H_DIR/demo-wait.out")"
fi
hp_wait_stored 3 30 || bad "not all three messages reached postlink-pushd"
"$CTL" push queue "$P" 2>&1 | show
mkdir -p "$H_DIR/dave-phone"
out=$("$HP_CLIENT" --url "$POSTLINK_PUSH_URL" --token-file "$H_DIR/token-$P-phone" \
    drain --dir "$H_DIR/dave-phone" 2>&1)
sed -n 's/^status=\([0-9]*\) id=\([^ ]*\) next=\([^ ]*\) .* req=\(.*\)$/GET \4 -> \1  Postlink-Id: \2  Postlink-Next: \3/p' \
    <<<"$out" | sed 's/[0-9a-f]\{24\}\([0-9a-f]\{8\}\)/…\1/g' | show
if grep -q '^requests=4 messages=3 redelivered=0$' <<<"$out"; then
    ok "three messages in four requests: each ack rode on the request for the next, the last one alone (204)"
else
    bad "the phone's drain: $(tail -n 1 <<<"$out")"
fi
for f in "$H_DIR"/dave-phone/*.eml; do grep -m1 '^Subject:' "$f"; done | sort | show
if "$CTL" push queue "$P" --json | jq -e '.messages | length == 0' >/dev/null; then
    ok "the store kept each message until the phone acknowledged it; now nothing is left"
else
    bad "messages left in dave's queue"
fi
