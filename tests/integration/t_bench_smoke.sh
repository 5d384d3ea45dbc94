#!/usr/bin/env bash
# t_bench_smoke.sh -- the store benchmark runs and prints one row per mode
# and writer count with a positive rate (the real run lives in bench/).
set -u
. "${abs_top_srcdir:-.}/tests/integration/tap.sh"
out=$("${abs_top_srcdir:-.}/bench/store-bench.sh" --smoke "${abs_top_builddir:-.}" 2>&1); rc=$?
tap_check "store benchmark smoke run exits 0" test $rc = 0
rows=$(awk '$1 ~ /^(sync|write_nosync|nosync)$/ && $3 > 0' <<<"$out" | wc -l)
tap_check "store benchmark prints 6 rows with rates ($rows)" test "$rows" = 6
tap_diag "$(echo "$out" | tr '\n' '|')"
tap_done
