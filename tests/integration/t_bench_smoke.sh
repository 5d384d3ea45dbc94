#!/usr/bin/env bash
# t_bench_smoke.sh -- the store benchmark runs and prints one row per mode
# and writer count with a positive rate; the sync benchmark prints its
# Postfix and store rates; the tag benchmark its rates and latencies (the
# real runs live in bench/).
set -u
. "${abs_top_srcdir:-.}/tests/integration/tap.sh"
out=$("${abs_top_srcdir:-.}/bench/store-bench.sh" --smoke "${abs_top_builddir:-.}" 2>&1); rc=$?
tap_check "store benchmark smoke run exits 0" test $rc = 0
rows=$(awk '$1 ~ /^(sync|write_nosync|nosync)$/ && $3 > 0' <<<"$out" | wc -l)
tap_check "store benchmark prints 6 rows with rates ($rows)" test "$rows" = 6
tap_diag "$(echo "$out" | tr '\n' '|')"
out=$("${abs_top_srcdir:-.}/bench/sync-bench.sh" --smoke "${abs_top_builddir:-.}" 2>&1); rc=$?
tap_check "sync benchmark smoke run exits 0" test $rc = 0
tap_check "it prints the plain and control rates and the store-alone rate" \
    sh -c "printf '%s\n' \"\$1\" | grep -Eq '^plain, no milter .* [0-9.]+ +1.00$' &&
           printf '%s\n' \"\$1\" | grep -Eq '^controls, milter.* [0-9.]+ +[0-9.]+$' &&
           printf '%s\n' \"\$1\" | grep -Eq '^state_update +sync +[1-9][0-9]*'" _ "$out"
tap_diag "$(echo "$out" | tr '\n' '|')"
out=$("${abs_top_srcdir:-.}/bench/tag-bench.sh" --smoke "${abs_top_builddir:-.}" 2>&1); rc=$?
tap_check "tag benchmark smoke run exits 0" test $rc = 0
tap_check "it prints both rates, p50/p99 and the added latency, with every message tagged" \
    sh -c "printf '%s\n' \"\$1\" | grep -Eq '^plain, no milter .* 1.00 +[0-9.]+ +[0-9.]+$' &&
           printf '%s\n' \"\$1\" | grep -Eq '^postlink-tag, .* [0-9.]+ +[0-9.]+ +[0-9.]+$' &&
           printf '%s\n' \"\$1\" | grep -Eq '^added latency per message: p50 [-+][0-9.]+ ms, p99 [-+][0-9.]+ ms$' &&
           printf '%s\n' \"\$1\" | grep -Eq '^\(10 of the 10 messages were tagged'" _ "$out"
tap_diag "$(echo "$out" | tr '\n' '|')"
tap_done
