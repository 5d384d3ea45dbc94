#!/usr/bin/env bash
# t_device.sh -- "postlinkctl device add|del|list" as an administrator uses
# it: registration, listing (text and JSON), removal, and clear refusals.
set -u
. "${abs_top_srcdir:-.}/tests/integration/tap.sh"
CTL=${abs_top_builddir:-.}/ctl/postlinkctl
T=$(mktemp -d /tmp/postlink-device.XXXXXX)
chmod 711 "$T"
trap 'rm -rf "$T"' EXIT
printf 'db_home = %s/db\nenabled_domains = postlink.test\n' "$T" >"$T/postlink.conf"
export POSTLINK_CONF=$T/postlink.conf
"$CTL" init >/dev/null 2>&1

out=$("$CTL" device add alice@postlink.test alice-phone@postlink.test --name "Alice's phone" 2>&1)
tap_check "device add registers" grep -q "registered device alice-phone@postlink.test" <<<"$out"
"$CTL" device add Alice@Postlink.Test pager-42@gw.example.net >/dev/null 2>&1
out=$("$CTL" device add alice@postlink.test ALICE-PHONE@postlink.test 2>&1); rc=$?
tap_check "adding the same device again is harmless (exit $rc)" \
    sh -c "test $rc = 0 && grep -q 'already registered' <<'X'
$out
X"
"$CTL" device add bob@postlink.test bob-desk@postlink.test >/dev/null 2>&1
json=$("$CTL" device list alice@postlink.test --json 2>/dev/null)
tap_check "device list --json shows alice's two devices" \
    jq_true 'length == 2 and .[0].address == "alice-phone@postlink.test" and .[0].name == "Alice'"'"'s phone" and .[1].address == "pager-42@gw.example.net"' "$json"
out=$("$CTL" device list 2>/dev/null)
tap_check "device list without USER shows every user's devices" test "$(wc -l <<<"$out")" = 3

out=$("$CTL" device add alice@postlink.test 'not an address' 2>&1); rc=$?
tap_check "a malformed device address is refused with the reason" \
    sh -c "test $rc = 64 && grep -q 'not of the form local-part@domain' <<'X'
$out
X"
out=$("$CTL" device add carol@other.example carol-phone@other.example 2>&1); rc=$?
tap_check "a user outside enabled_domains is refused" \
    sh -c "test $rc != 0 && grep -q 'not in enabled_domains' <<'X'
$out
X"
out=$("$CTL" device add alice@postlink.test alice@postlink.test 2>&1); rc=$?
tap_check "USER's own address is not a device" test $rc = 64

out=$("$CTL" device del alice@postlink.test alice-phone@postlink.test 2>&1)
tap_check "device del removes" grep -q "removed device" <<<"$out"
out=$("$CTL" device del alice@postlink.test alice-phone@postlink.test 2>&1); rc=$?
tap_check "removing it again says it is not there" \
    sh -c "test $rc = 1 && grep -q 'has no device' <<'X'
$out
X"
json=$("$CTL" device list alice@postlink.test --json 2>/dev/null)
tap_check "alice has one device left" jq_true 'length == 1' "$json"
"$CTL" device add carol@postlink.test carol-tv@postlink.test --name "$(printf 'TV \033[2J\033]0;owned\007 set')" >/dev/null 2>&1
out=$("$CTL" device list carol@postlink.test 2>/dev/null)
tap_check "device list shows control characters in a name as \\xNN" grep -qF 'TV \x1b[2J\x1b]0;owned\x07 set' <<<"$out"
tap_check "... and never sends them raw to the terminal" test "$(printf '%s' "$out" | tr -cd '\033\007' | wc -c)" = 0
tap_done
