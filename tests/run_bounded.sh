#!/bin/sh
# run_bounded.sh SECONDS TEST [ARGS...] -- make check's LOG_COMPILER: run
# one test under a time limit.  A test still running after SECONDS is killed
# (its whole process group, by timeout(1)) and a TAP "Bail out!" line says
# so, so that a hang is an ERROR in the test's .log and .trs -- counted as a
# failure by ./test.sh -- instead of a suite that never ends.
limit=$1
shift
timeout -k 10 "$limit" "$@"
rc=$?
if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    echo "Bail out! $1 did not finish in $limit s: killed (a hang?)"
fi
exit "$rc"
