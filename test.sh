#!/usr/bin/env bash
# test.sh -- install what is missing, build, and run every test: unit tests,
# the unit tests again under AddressSanitizer + UndefinedBehaviorSanitizer,
# each libFuzzer target for $FUZZ_SECONDS (default 4 here, so that the whole
# suite stays within CI's 20 minutes; fuzz/run.sh 600 for a long run) s,
# and the integration tests against a private Postfix, Dovecot and sink on
# 127.0.0.1.  Ends with "N passed, N failed, N skipped" counted from the
# test drivers' result files; exits non-zero if anything failed or skipped.
set -u
cd "$(dirname "$0")"
TOP=$PWD
JOBS=$(nproc 2>/dev/null || echo 2)
FAILED_STAGES=0
T_START=$(date +%s)

stage() {                      # stage NAME COMMAND...
    local name=$1 t0 rc; shift
    t0=$(date +%s)
    echo "=== $name"
    "$@"; rc=$?
    echo "=== $name: $([ $rc = 0 ] && echo ok || echo "FAILED (exit $rc)") in $(( $(date +%s) - t0 )) s"
    [ $rc = 0 ] || FAILED_STAGES=$((FAILED_STAGES + 1))
    return $rc
}

if [ "$(id -u)" != 0 ]; then
    echo "test.sh: the integration tests start a private Postfix and must run as root" >&2
    exit 1
fi

build() {                      # build DIR CONFIGURE-ARGS...
    local dir=$1; shift
    mkdir -p "$dir" && cd "$dir" &&
    { [ -f Makefile ] || ../configure -q "$@"; } &&
    make -s -j"$JOBS" >/dev/null
    local rc=$?; cd "$TOP"; return $rc
}

find build build-asan build-fuzz -name '*.trs' -delete 2>/dev/null

stage "install dependencies" ./scripts/install-deps.sh || { echo "0 passed, 1 failed, 0 skipped"; exit 1; }
stage "autogen" ./autogen.sh >/dev/null 2>&1 &&
stage "build (-Wall -Wextra -Werror)" build build &&
stage "unit tests" make -s -C build check
stage "build with ASan+UBSan" build build-asan --enable-sanitizers &&
stage "unit tests under ASan+UBSan" make -s -C build-asan check
export FUZZ_SECONDS=${FUZZ_SECONDS:-4}
stage "fuzz targets (libFuzzer, $FUZZ_SECONDS s each)" ./fuzz/run.sh
if [ -x build/ctl/postlinkctl ]; then
    stage "integration tests (private Postfix, Dovecot, sink)" make -s -C build check-integration
fi

# Count what the drivers recorded, test case by test case.
read -r pass fail skip < <(find build build-asan build-fuzz -name '*.trs' -exec cat {} + 2>/dev/null | awk '
    /^:test-result: PASS/  { p++ }
    /^:test-result: (FAIL|XPASS|ERROR)/ { f++ }
    /^:test-result: (SKIP|XFAIL)/ { s++ }
    END { printf "%d %d %d\n", p, f, s }')
fail=$((fail + FAILED_STAGES))
echo "total time: $(( $(date +%s) - T_START )) s"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" = 0 ] && [ "$skip" = 0 ] && [ "$pass" -gt 0 ]
