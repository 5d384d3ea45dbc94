#!/usr/bin/env bash
# t_json.sh -- every "postlinkctl ... --json" parsed by independent parsers
# (Python's json, strict about UTF-8 and raw control characters, and jq),
# with each value compared to what went in: non-ASCII (Jürgen, 日本),
# control characters (\x01, tab, newline), quotes and backslashes, and
# ill-formed UTF-8, which must come out as U+FFFD (postlinkctl(8), "JSON
# OUTPUT").  The data gets into the store the way it does in production:
# device names and JIDs through postlinkctl, message states and pending
# controls through Postfix and postlink-sync, db_home and directories
# through postlink.conf and the command line.
set -u
. "${abs_top_srcdir:-.}/tests/integration/tap.sh"
. "$abs_top_srcdir/tests/harness/harness.sh"
. "$abs_top_srcdir/tests/harness/sync.sh"

h_init || exit 1
HS_CONF_EXTRA="pending_ttl = 6s"
h_start_sink && h_start_dovecot && hs_setup && h_start_postfix && hs_start || {
    tap_fail "harness with postlink-sync and postlink-syncd starts"; tap_done; exit 1; }
tap_ok "harness with postlink-sync and postlink-syncd starts"
export CTL=$POSTLINKCTL U=$POSTLINK_DEMO_USER PW=$POSTLINK_DEMO_PASS
export PHONE=alice-phone@devices.test DESK=alice-desk@devices.test

# jcheck DESCRIPTION JSON PYTHON-CONDITION: JSON parses (strictly: UTF-8,
# no raw control characters) and the condition holds, with d the document
# and B("VAR") the bytes of environment variable VAR decoded as UTF-8 with
# every ill-formed sequence replaced by U+FFFD.  jq must parse it too.
cat >"$H_DIR/jcheck.py" <<'PY'
import json, os, sys
raw = os.environb[b"JSON"]
try:
    d = json.loads(raw.decode("utf-8"))
except Exception as e:
    print("# not valid JSON (%s): %r" % (e, raw[:300]))
    sys.exit(1)
def B(name):
    return os.environb[name.encode()].decode("utf-8", "replace")
def one(rows, **kw):
    hit = [r for r in rows if all(r.get(k) == v for k, v in kw.items())]
    return hit[0] if len(hit) == 1 else {}
ok = eval(sys.argv[1])
if not ok:
    print("# condition failed on: %s" % json.dumps(d, ensure_ascii=True)[:600])
sys.exit(0 if ok else 1)
PY
jcheck() {
    local desc=$1
    if JSON=$2 python3 "$H_DIR/jcheck.py" "$3" && jq -e . >/dev/null <<<"$2"; then
        tap_ok "$desc"
    else
        tap_fail "$desc"
    fi
    TESTED="$TESTED|$4"
}
TESTED=""

# --- data with every kind of awkward character ----------------------------
export NAME1=$'J\xc3\xbcrgen \xe6\x97\xa5\xe6\x9c\xac \x01\ttab "quoted" back\\slash \x7f end'
# ill-formed: a lone 0xFF, a cut-off 3-byte sequence, an overlong '/', a surrogate
export NAME2=$'Latin-1 J\xfcrgen, cut \xe6\x97, overlong \xc0\xaf, surrogate \xed\xa0\x80, 4-byte \xf0\x9f\x98\x80'
"$CTL" device add "$U" "$PHONE" --name "$NAME1" >/dev/null
"$CTL" device add "$U" "$DESK" --name "$NAME2" >/dev/null
export JID='alice\5c|{x}@chat.postlink.test'
"$CTL" messenger link "$U" "$JID" >/dev/null
# Message-IDs may hold quotes and backslashes (printable ASCII only)
export M1="<json\"q\\\\b.$RANDOM@test.invalid>" C1="<c1\\\"x.$RANDOM@test.invalid>"
export M2="<later\\\\\"z.$RANDOM@test.invalid>" C2="<c2\"\\.$RANDOM@test.invalid>"
tap_diag "message-ids: $M1 $C1 $M2 $C2"
hs_send "$POSTLINK_SMTP_PORT" stranger@elsewhere.example "$U" --header "Message-Id: $M1" >/dev/null
hs_send "$POSTLINK_SUBMISSION_PORT" "$PHONE" "$U" --auth-user "$U" --auth-password "$PW" \
    --header "Message-Id: $C1" --add-header "X-Control: read" --add-header "X-Control-Target: $M1" >/dev/null
end=$((SECONDS + 15))
until "$CTL" state show "$U" "$M1" --json 2>/dev/null | jq -e '.[0].states == ["read"]' >/dev/null ||
      [ $SECONDS -ge $end ]; do sleep 0.1; done
hs_send "$POSTLINK_SUBMISSION_PORT" "$DESK" "$U" --auth-user "$U" --auth-password "$PW" \
    --header "Message-Id: $C2" --add-header "X-Control: saved" --add-header "X-Control-Target: $M2" >/dev/null
end=$((SECONDS + 15))
until "$CTL" pending list "$U" --json 2>/dev/null | jq -e 'length == 1' >/dev/null ||
      [ $SECONDS -ge $end ]; do sleep 0.1; done

# A copy of the store, taken now (the control still pending), in a
# directory whose name holds all of it, newline and ill-formed UTF-8 too.
install -d -o postlink -g postlink "$H_DIR/bk"
export HOME2=$H_DIR/bk/$'J\xc3\xbcrgen \xe6\x97\xa5\xe6\x9c\xac "q" b\\s \x01\ttab\nnewline \xff.'
out=$("$CTL" db backup "$HOME2" --json 2>/dev/null)
jcheck "db backup DIR --json: ok, no problems" "$out" 'd["ok"] is True and d["problems"] == []' "db backup"
out=$("$CTL" db backup "$HOME2" --json 2>/dev/null)
jcheck "db backup DIR --json of a used DIR: ok false, the error names DIR" "$out" \
    'd["ok"] is False and B("HOME2") in d["error"]' "db backup"
W=(-o "db_home=$HOME2")

out=$("$CTL" "${W[@]}" status --json 2>/dev/null)
jcheck "status --json: db_home round-trips (ill-formed byte as U+FFFD)" "$out" \
    'd["db_home"] == B("HOME2") and "\ufffd" in d["db_home"] and "\n" in d["db_home"] and d["write_probe"]["ok"] is True and d["tables"]["device"] == 2' "status"
out=$("$CTL" "${W[@]}" db check --json 2>/dev/null)
jcheck "db check --json" "$out" 'd["ok"] is True and d["problems"] == [] and d["tables"] > 5' "db check"
out=$("$CTL" "${W[@]}" db recover --json 2>/dev/null)
jcheck "db recover --json" "$out" 'd["ok"] is True and d["log_files"] >= 1' "db recover"

out=$("$CTL" "${W[@]}" device list --json 2>/dev/null)
jcheck "device list --json: UTF-8, \\x01, tab, quotes, backslash, DEL round-trip" "$out" \
    'one(d, address=B("PHONE"))["name"] == B("NAME1") and "日本" in B("NAME1")' "device list"
jcheck "device list --json: each ill-formed sequence is one U+FFFD, the 4-byte one kept" "$out" \
    'one(d, address=B("DESK"))["name"] == B("NAME2") and one(d, address=B("DESK"))["name"].count("\ufffd") == 7 and "\U0001F600" in B("NAME2")' "device list"
out=$("$CTL" "${W[@]}" device list "$U" --json 2>/dev/null)
jcheck "device list USER --json: user and addresses" "$out" \
    'len(d) == 2 and all(r["user"] == B("U") for r in d) and isinstance(d[0]["created"], int)' "device list"

out=$("$CTL" "${W[@]}" state show "$U" --json 2>/dev/null)
jcheck "state show USER --json: a Message-ID with quotes and backslashes" "$out" \
    'one(d, message_id=B("M1"))["states"] == ["read"] and one(d, message_id=B("M1"))["user"] == B("U")' "state show"
out=$("$CTL" "${W[@]}" state show "$U" "$M1" --json 2>/dev/null)
jcheck "state show USER MESSAGE-ID --json" "$out" \
    'len(d) == 1 and d[0]["message_id"] == B("M1") and d[0]["version"] >= 1' "state show"

out=$("$CTL" "${W[@]}" pending list --json 2>/dev/null)
jcheck "pending list --json: target, control, sender round-trip" "$out" \
    'len(d) == 1 and d[0]["target"] == B("M2") and d[0]["control"] == B("C2") and d[0]["sender"] == B("DESK") and d[0]["state"] == "saved" and d[0]["expired"] is False' "pending list"

out=$("$CTL" "${W[@]}" messenger list --json 2>/dev/null)
jcheck "messenger list --json: a JID with a backslash and braces" "$out" \
    'len(d) == 1 and d[0]["jid"] == B("JID") and d[0]["address"] == B("U") and d[0]["share"] is True' "messenger list"

# the routing tables: a keyword in UTF-8 with quotes and a backslash
export KW=$'\xe4\xba\xac\xe9\x83\xbd "q" back\\slash'
"$CTL" "${W[@]}" route prefix add 050- >/dev/null
"$CTL" "${W[@]}" -o route_country_code=81 route map add '*.co.jp' '+81 50 2222 3333' >/dev/null
"$CTL" "${W[@]}" route keyword add "$KW" 050-1234-5678 >/dev/null
out=$("$CTL" "${W[@]}" route prefix list --json 2>/dev/null)
jcheck "route prefix list --json" "$out" 'd[0]["prefix"] == "050" and d[0]["digits"] == 8' "route prefix"
out=$("$CTL" "${W[@]}" route map list --json 2>/dev/null)
jcheck "route map list --json: the canonical number" "$out" \
    'd[0]["key"] == "*.co.jp" and d[0]["number"] == "05022223333" and isinstance(d[0]["created"], int)' "route map"
out=$("$CTL" "${W[@]}" route keyword list --json 2>/dev/null)
jcheck "route keyword list --json: UTF-8, quotes and backslash round-trip" "$out" \
    'len(d) == 1 and d[0]["keyword"] == B("KW") and d[0]["number"] == "05012345678"' "route keyword"
printf 'Subject: %s\n\nhello\n' "$KW" >"$H_DIR/kw.eml"
out=$("$CTL" "${W[@]}" route test bob@x.example --message "$H_DIR/kw.eml" --json 2>/dev/null)
jcheck "route test --json: the keyword found in the header" "$out" \
    'd["number"] == "05012345678" and d["rule"] == "keyword:header" and d["detail"] == B("KW")' "route test"
out=$("$CTL" "${W[@]}" route test bob@x.example --json 2>/dev/null)
jcheck "route test --json: no number is null" "$out" 'd["number"] is None and d["rule"] is None' "route test"

# mirror accounts: a login with non-ASCII and ill-formed bytes, quotes and
# a backslash (no control characters: postlinkctl refuses those)
export MLOGIN=$'J\xc3\xbcrgen "q" back\\slash \xff cut \xe6\x97 \xe6\x97\xa5'
mkdir -p "$H_DIR/m secret" && printf 'pw\n' >"$H_DIR/m secret/p" && chown -R postlink "$H_DIR/m secret"
"$CTL" mirror add "$U" --primary pop3://127.0.0.1:1 --login "$MLOGIN" \
    --secret-file "$H_DIR/m secret/p" --deliver-to "$U" --mode mark --interval 0 >/dev/null
out=$("$CTL" mirror list --json 2>/dev/null)
jcheck "mirror list --json" "$out" \
    'len(d) == 1 and d[0]["login"] == B("MLOGIN") and d[0]["mode"] == "mark" and d[0]["primary"] == "pop3://127.0.0.1:1"' "mirror list"
out=$("$CTL" mirror status "$U" --json 2>/dev/null)
jcheck "mirror status USER --json (never synced)" "$out" \
    'd["login"] == B("MLOGIN") and d["sync"] is None and d["ids"]["held"] == 0' "mirror status"

# the live store, once postlink-syncd has expired the held control
end=$((SECONDS + 20))
until grep -q 'pending control expired' "$H_SYNC/syncd.log" || [ $SECONDS -ge $end ]; do sleep 0.2; done
out=$("$CTL" pending list "$U" --expired --json 2>/dev/null)
jcheck "pending list --expired --json" "$out" \
    'len(d) == 1 and d[0]["expired"] is True and d[0]["target"] == B("M2") and d[0]["control"] == B("C2")' "pending list"

# push devices and their queue: a sender and a reference with quotes, a
# backslash, UTF-8 and ill-formed bytes (the push store takes any bytes
# but controls and spaces there), put as postlink-pushd would
# (tests/tools/pl-push-put)
out=$("$CTL" push device add "$U" json-phone --json 2>/dev/null)
jcheck "push device add --json: user, device, token" "$out" \
    'd["user"] == B("U").lower() and d["device"] == "json-phone" and len(d["token"]) == 81 and d["token"][16] == "."' "push device"
export PTOK=$(jq -r .token <<<"$out")
export PSENDER=$'J\xc3\xbcrgen"q"back\\slash\xff,cut\xe6\x97@x.example' PREF=$'r\xe6\x97\xa5"\\\xc0\xaf'
printf 'Subject: push\n\nhi\n' >"$H_DIR/push.eml"
"$abs_top_builddir/tests/tools/pl-push-put" -h "$POSTLINK_DB_HOME" -u "$U" -s "$PSENDER" -r "$PREF" \
    "$H_DIR/push.eml" >/dev/null
out=$("$CTL" push device list "$U" --json 2>/dev/null)
jcheck "push device list USER --json: the selector, not the secret" "$out" \
    'len(d) == 1 and d[0]["device"] == "json-phone" and d[0]["selector"] == B("PTOK")[:16] and d[0]["waiting"] == 1 and B("PTOK")[17:] not in json.dumps(d)' "push device"
out=$("$CTL" push queue "$U" --json 2>/dev/null)
jcheck "push queue USER --json: sender and ref round-trip (ill-formed bytes as U+FFFD)" "$out" \
    'd["messages"][0]["sender"] == B("PSENDER") and d["messages"][0]["ref"] == B("PREF") and "\ufffd" in d["messages"][0]["ref"] and d["messages"][0]["devices"] == [{"device": "json-phone", "state": "waiting", "time": None}] and d["queued"]["count"] == 1' "push queue"
# the VAPID key of Web Push: the file name (quotes, UTF-8) round-trips
export VPATH=$H_DIR/$'vapid "k\xc3\xbc".pem'
out=$("$CTL" push vapid-key generate "$VPATH" --json 2>/dev/null)
jcheck "push vapid-key generate --json: the file and its 87-character public key" "$out" \
    'd["file"] == B("VPATH") and len(d["public_key"]) == 87' "push vapid-key"

# every command that takes --json (postlinkctl -h and postlinkctl(8)) was run above
tested=$(tr '|' '\n' <<<"$TESTED" | sed '/^$/d' | sort -u | tr '\n' ',')
from_help=$("$CTL" -h | grep -- '--json' | awk '{print $1, $2}' |
    awk '{n = split($2, s, "|"); for (i = 1; i <= n; i++) print $1, s[i]}' | sed 's/ \[--json\]$//' |
    sort -u | tr '\n' ',')
tap_check "postlinkctl -h lists no --json command this test did not run ($from_help)" \
    test "$from_help" = "$tested"
from_man=$(sed -n '/^\.B[IR]* .*json/{s/\\-/-/g;s/[".]//g;s/^B[IR]* *//;p}' \
    "$abs_top_srcdir/man/postlinkctl.8" | awk '{print $1, $2}' | sed 's/ \[$//' |
    awk 'NF == 1 {print} {n = split($2, s, "|"); for (i = 1; i <= n; i++) print $1, s[i]}' |
    sort -u | tr '\n' ',')
tap_check "postlinkctl(8) documents --json for exactly these commands ($from_man)" \
    test "$from_man" = "$tested"
tap_check "postlinkctl writes JSON with jansson" sh -c "ldd '$CTL' | grep -q libjansson"
left=$(grep -rlE 'strbuf_json|\\u%04x|\\"[a-z_]+\\":' "$abs_top_srcdir"/ctl "$abs_top_srcdir"/lib 2>/dev/null)
tap_check "no hand-written JSON escaping left in ctl/ and lib/${left:+ ($left)}" test -z "$left"
tap_done
