#!/usr/bin/env bash
# t_push_ctl.sh -- "postlinkctl push device add|list|del" and "push queue"
# as an administrator uses them on a store of its own (no Postfix): the
# token shown once and never again, nor kept in the store in clear; the
# queue in each state a device can be in (tests/tools/pl-push-put does what
# postlink-pushd would: put, sent, acknowledge); clear refusals.
set -u
. "${abs_top_srcdir:-.}/tests/integration/tap.sh"
B=${abs_top_builddir:-.}
CTL=$B/ctl/postlinkctl
PUT=$B/tests/tools/pl-push-put
T=$(mktemp -d /tmp/postlink-pushctl.XXXXXX)
chmod 711 "$T"
trap 'rm -rf "$T"' EXIT
printf 'db_home = %s/db\nenabled_domains = postlink.test\n' "$T" >"$T/postlink.conf"
export POSTLINK_CONF=$T/postlink.conf
"$CTL" init >/dev/null 2>&1
U=alice@postlink.test
OUTS=()                             # every list/queue output, checked for secrets at the end

# --- add ------------------------------------------------------------------
"$CTL" push device add Alice@Postlink.Test phone >"$T/add.out" 2>"$T/add.err"; rc=$?
tap_check "device add exits 0" test $rc = 0
tap_check "device add prints one line 'token: <16 hex>.<64 hex>' on stdout" \
    sh -c "test \$(wc -l <'$T/add.out') = 1 && grep -qE '^token: [0-9a-f]{16}\\.[0-9a-f]{64}\$' '$T/add.out'"
tap_check "device add says on stderr that the token is shown only once" grep -q "shown only this once" "$T/add.err"
TOK=$(sed 's/^token: //' "$T/add.out")
SEL=${TOK%%.*} SECRET=${TOK#*.}

out=$("$CTL" push device add alice@postlink.test phone 2>"$T/err"); rc=$?
tap_check "a second add of the same name fails (exit $rc), prints no token" \
    sh -c "test $rc = 1 && test -z '$out' && grep -q 'has a push device phone already' '$T/err'"
"$CTL" push device add "$U" 'my phone' >/dev/null 2>"$T/err"; rc=$?
tap_check "a device name with a space is refused with the reason (exit $rc)" \
    sh -c "test $rc = 64 && grep -q 'only letters, digits' '$T/err'"
"$CTL" push device add 'not an address' phone >/dev/null 2>"$T/err"; rc=$?
tap_check "a USER that is not an address is refused (exit $rc)" \
    sh -c "test $rc = 64 && grep -q 'not of the form' '$T/err'"
json=$("$CTL" push device add "$U" tablet --json 2>/dev/null)
tap_check "device add --json: user, device and token" \
    jq_true '.user == "alice@postlink.test" and .device == "tablet" and (.token | test("^[0-9a-f]{16}\\.[0-9a-f]{64}$"))' "$json"
TOK2=$(jq -r .token <<<"$json")
tap_check "each device gets a token of its own" test "$TOK2" != "$TOK"

# --- list -----------------------------------------------------------------
out=$("$CTL" push device list 2>&1); rc=$?
OUTS+=("$out")
tap_check "device list shows phone with its selector" \
    sh -c "test $rc = 0 && grep -qE '^alice@postlink.test +phone +$SEL +[0-9]{4}-[0-9]{2}-[0-9]{2}T' <<'X'
$out
X"
tap_check "device list shows no secret half of a token" sh -c "! grep -qF -e '${SECRET}' -e '${TOK2#*.}' <<'X'
$out
X"
json=$("$CTL" push device list "$U" --json 2>/dev/null)
OUTS+=("$json")
tap_check "device list USER --json: both devices, selector, created, counts 0, no Web Push subscription" \
    jq_true 'length == 2 and .[0].device == "phone" and .[0].selector == "'"$SEL"'" and (.[0].created | type) == "number" and .[0].waiting == 0 and .[0].sent == 0 and .[0].processed == 0 and .[0].webpush == false and .[1].device == "tablet"' "$json"
tap_check "device list --json has exactly the documented keys" \
    jq_true '.[0] | keys == ["created","device","processed","selector","sent","user","waiting","webpush"]' "$json"

# the store has the selector (so the search works) but not the secret
tap_check "the selector is found in the db_home files" grep -rqaF "$SEL" "$T/db"
tap_check "the token's secret half is in no db_home file, log files included" \
    sh -c "! grep -rqaF '$SECRET' '$T/db' && ! grep -rqaF '${TOK2#*.}' '$T/db'"

# --- queue ----------------------------------------------------------------
out=$("$CTL" push queue bob@postlink.test 2>&1); rc=$?
tap_check "queue of a user with no messages: 0 messages (exit $rc)" \
    sh -c "test $rc = 0 && grep -q '^bob@postlink.test: 0 messages' <<'X'
$out
X"
json=$("$CTL" push queue "$U" --json 2>/dev/null)
tap_check "queue --json with no messages: empty list, zero totals" \
    jq_true '.user == "alice@postlink.test" and .messages == [] and .queued.count == 0 and .queued.oldest == null and .processed.count == 0' "$json"

printf 'From: bob@example.org\nSubject: one\n\nfirst\n' >"$T/m1.eml"
printf 'Subject: two\n\nsecond message\n' >"$T/m2.eml"
p1=$("$PUT" -h "$T/db" -u "$U" -s bob@example.org -r mirror-7 -d 1700000000 "$T/m1.eml") &&
p2=$("$PUT" -h "$T/db" -u Alice@postlink.test "$T/m2.eml"); rc=$?
tap_check "pl-push-put stores two messages ($p1, $p2)" test $rc = 0
ID1=${p1%% *} ID2=${p2%% *}
S1=$(stat -c %s "$T/m1.eml") S2=$(stat -c %s "$T/m2.eml")
"$PUT" -h "$T/db" -u nobody@postlink.test "$T/m1.eml" 2>/dev/null; rc=$?
tap_check "... but not for a user without a device (exit $rc)" test $rc = 2

out=$("$CTL" push queue "$U" 2>&1)
OUTS+=("$out")
tap_check "queue lists both messages in arrival order" \
    sh -c "grep -q '^alice@postlink.test: 2 messages' <<'X' && grep -A5 '^$ID1  seq 1  $S1 bytes  message/rfc822  arrived .* from <bob@example.org>  ref mirror-7' <<'X' | grep -q '^$ID2  seq 2  $S2 bytes'
$out
X
$out
X"
tap_check "queue shows each message waiting for each device" \
    test "$(grep -cE '^    (phone|tablet) +waiting$' <<<"$out")" = 4
json=$("$CTL" push queue "$U" --json 2>/dev/null)
OUTS+=("$json")
tap_check "queue --json validates: ids, seq, size, type, date, sender, ref" \
    jq_true '(.messages | length) == 2 and .messages[0].id == "'"$ID1"'" and .messages[0].seq == 1 and .messages[0].size == '"$S1"' and .messages[0].type == "message/rfc822" and .messages[0].date == 1700000000 and .messages[0].sender == "bob@example.org" and .messages[0].ref == "mirror-7" and (.messages[0].arrived | type) == "number" and .messages[1].id == "'"$ID2"'" and .messages[1].seq == 2 and .messages[1].sender == "" and .messages[1].ref == ""' "$json"
tap_check "queue --json: every device waiting, no time" \
    jq_true '[.messages[].devices[]] | length == 4 and all(.state == "waiting" and .time == null) and (map(.device) | sort) == ["phone","phone","tablet","tablet"]' "$json"
tap_check "queue --json: the totals of pl_push_usage" \
    jq_true '.queued.count == 2 and .queued.bytes == '"$((S1 + S2))"' and (.queued.oldest | type) == "number" and .processed.count == 0 and .processed.bytes == 0' "$json"

# the device's side, as postlink-pushd would record it: phone was sent both
# and moved the first to its processed store; tablet deleted the first
"$PUT" -h "$T/db" -S "$TOK" "$ID1" && "$PUT" -h "$T/db" -S "$TOK" "$ID2" &&
    a1=$("$PUT" -h "$T/db" -A "$TOK" "$ID1" move) && "$PUT" -h "$T/db" -S "$TOK2" "$ID1" &&
    a2=$("$PUT" -h "$T/db" -A "$TOK2" "$ID1" delete); rc=$?
tap_check "pl-push-put records sends and acknowledgements ($a1 $a2)" test "$rc.${a1:-x}.${a2:-x}" = 0.0.0
json=$("$CTL" push device list --json 2>/dev/null)
OUTS+=("$json")
tap_check "device list counts waiting / sent / processed per device" \
    jq_true '(.[] | select(.device == "phone") | [.waiting, .sent, .processed]) == [0,1,1] and (.[] | select(.device == "tablet") | [.waiting, .sent, .processed]) == [1,0,0]' "$json"
json=$("$CTL" push queue "$U" --json 2>/dev/null)
OUTS+=("$json")
tap_check "queue --json: moved, acked, sent (with times) and waiting" \
    jq_true '(.messages[0].devices | map([.device, .state])) == [["phone","moved"],["tablet","acked"]] and (.messages[0].devices | all(.time | type == "number")) and (.messages[1].devices | map([.device, .state])) == [["phone","sent"],["tablet","waiting"]] and (.messages[1].devices[0].time | type) == "number" and .processed.count == 1 and .queued.count == 1' "$json"
out=$("$CTL" push queue "$U" 2>&1)
OUTS+=("$out")
tap_check "queue text shows the states with ISO times" \
    sh -c "grep -qE '^    phone +moved [0-9-]{10}T[0-9:]{8}Z$' <<'X' && grep -qE '^    tablet +acked ' <<'X' && grep -qE '^    phone +sent ' <<'X' && grep -q '^processed: 1 entry' <<'X'
$out
X
$out
X
$out
X
$out
X"

# --- never the secret -------------------------------------------------------
leak=0
for o in "${OUTS[@]}"; do
    grep -qF -e "$SECRET" -e "${TOK2#*.}" <<<"$o" && leak=1
done
tap_check "no list or queue output holds a token's secret half (${#OUTS[@]} outputs)" test $leak = 0
tap_check "... while they do show the selectors" grep -qF "$SEL" <<<"${OUTS[*]}"

# --- del --------------------------------------------------------------------
out=$("$CTL" push device del "$U" phone 2>&1); rc=$?
tap_check "device del removes (exit $rc)" sh -c "test $rc = 0 && grep -q 'removed device phone' <<'X'
$out
X"
json=$("$CTL" push device list --json 2>/dev/null)
tap_check "only tablet is left" jq_true 'length == 1 and .[0].device == "tablet"' "$json"
json=$("$CTL" push queue "$U" --json 2>/dev/null)
tap_check "the queue shows tablet only; the message no device needs is gone" \
    jq_true '(.messages | length) == 1 and .messages[0].id == "'"$ID2"'" and .messages[0].devices == [{"device":"tablet","state":"waiting","time":null}] and .processed.count == 0' "$json"
"$CTL" push device del "$U" phone >/dev/null 2>"$T/err"; rc=$?
tap_check "deleting it again fails (exit $rc) and says why" \
    sh -c "test $rc = 1 && grep -q 'has no push device phone' '$T/err'"
"$CTL" push device del nobody@postlink.test tablet >/dev/null 2>&1; rc=$?
tap_check "deleting a device of an unknown user fails (exit $rc)" test $rc = 1

# --- limits and usage ---------------------------------------------------------
for i in $(seq 1 32); do "$CTL" push device add carol@postlink.test "d$i" >/dev/null 2>&1 || break; done
"$CTL" push device add carol@postlink.test d33 >"$T/out" 2>"$T/err"; rc=$?
tap_check "the 33rd device is refused (exit $rc), no token printed" \
    sh -c "test $rc = 1 && grep -q 'the most there can be' '$T/err' && ! test -s '$T/out'"
"$CTL" push device frob >/dev/null 2>&1; rc=$?
tap_check "an unknown push command is a usage error (exit $rc)" test $rc = 64
"$CTL" push queue >/dev/null 2>&1; rc=$?
tap_check "queue without USER is a usage error (exit $rc)" test $rc = 64
tap_check "postlinkctl -h lists the push commands" \
    sh -c "'$CTL' -h | grep -q 'push device add USER NAME' && '$CTL' -h | grep -q 'push queue USER'"
man_out=$(MANWIDTH=100 man -l "${abs_top_srcdir:-.}/man/postlinkctl.8" 2>/dev/null | col -b)
tap_check "postlinkctl(8) documents push device add and push queue" \
    sh -c "grep -q 'push device add' <<'X' && grep -q 'push queue' <<'X'
$man_out
X
$man_out
X"
tap_done
