# tap.sh -- tiny TAP helpers for the integration tests (sourced).
# ok/not ok lines with a running number; the plan is printed at the end
# by tap_done, so a test that dies half-way is reported as an ERROR.
TAP_N=0
TAP_FAILED=0
tap_ok()   { TAP_N=$((TAP_N + 1)); echo "ok $TAP_N - $*"; }
tap_fail() { TAP_N=$((TAP_N + 1)); TAP_FAILED=$((TAP_FAILED + 1)); echo "not ok $TAP_N - $*"; }
# tap_check DESCRIPTION COMMAND...: ok if the command succeeds
tap_check() {
    local desc=$1; shift
    if "$@"; then tap_ok "$desc"; else tap_fail "$desc"; fi
}
# jq_true FILTER JSON: the filter holds on the JSON text
# (jq -e exits 0 on empty input: that must not count as true)
jq_true() { [ -n "$2" ] && jq -e "$1" >/dev/null 2>&1 <<<"$2"; }
tap_diag() { printf '# %s\n' "$@"; }
tap_done() { echo "1..$TAP_N"; [ "$TAP_FAILED" = 0 ]; }
