#!/usr/bin/env bash
# t_bench_smoke.sh -- the benchmarks run and report what they promise (the
# real runs live in bench/): the store benchmark prints one row per mode and
# writer count with a positive rate; "bench/run milters --smoke" (1 round,
# 20 messages per run, this build) runs every configuration (both
# engines, separate and combined), with a positive msg/s for each shape,
# every message at the
# sink, and a JSON report with the headline ratio milters.all.ratio.
set -u
. "${abs_top_srcdir:-.}/tests/integration/tap.sh"
out=$("${abs_top_srcdir:-.}/bench/store-bench.sh" --smoke "${abs_top_builddir:-.}" 2>&1); rc=$?
tap_check "store benchmark smoke run exits 0" test $rc = 0
rows=$(awk '$1 ~ /^(sync|write_nosync|nosync)$/ && $3 > 0' <<<"$out" | wc -l)
tap_check "store benchmark prints 6 rows with rates ($rows)" test "$rows" = 6
tap_diag "$(echo "$out" | tr '\n' '|')"

res=$(mktemp -d /tmp/postlink-bench-smoke.XXXXXX)
trap 'rm -rf "$res"' EXIT
out=$("${abs_top_srcdir:-.}/bench/run" milters --smoke --out "$res" 2>&1); rc=$?
tap_check "bench/run milters --smoke exits 0" test $rc = 0
tap_check "it writes latest.md and latest.json" test -s "$res/latest.md" -a -s "$res/latest.json"
# Every configuration: measured on each shape of its listener (msg/s > 0,
# every message delivered), or skipped with a reason.
verdict=$(python3 - "$res/latest.json" <<'PY' 2>&1
import json, sys
mx = ["bare", "ref1", "ref2", "sync", "tag", "all", "all-combined", "all-libmilter",
      "all-combined-libmilter", "opendkim"]
sub = ["sub-bare", "sub-all", "sub-all-combined"]
m = json.load(open(sys.argv[1]))["milters"]
bad = []
for cfg in mx + sub:
    v = m.get(cfg)
    if v is None:
        bad.append(cfg + ": missing")
    elif "skipped" in v:
        if not v["skipped"].startswith("skipped: ") or len(v["skipped"]) < 20:
            bad.append(cfg + ": skipped without a reason")
    else:
        for shape in (["2k", "real2k", "real100k"] if cfg in mx else ["real2k", "real100k"]):
            d = v.get(shape)
            if d is None:
                bad.append("%s/%s: missing" % (cfg, shape))
            elif not d["msgs_per_s"] > 0:
                bad.append("%s/%s: msg/s %s" % (cfg, shape, d["msgs_per_s"]))
            elif d["delivered"] != d["sent"] or d["sent"] < 1:
                bad.append("%s/%s: %d of %d at the sink" % (cfg, shape, d["delivered"], d["sent"]))
for must in mx + sub:                       # every program and engine exists: no row may skip
    if "skipped" in m.get(must, {"skipped": ""}):
        bad.append(must + ": must run (" + m.get(must, {}).get("skipped", "missing") + ")")
print("; ".join(bad) if bad else "ok")
PY
)
tap_check "every row ran (msg/s > 0, every message at the sink): $verdict" \
    test "$verdict" = ok
tap_check "the JSON has the headline ratio milters.all.ratio > 0" \
    python3 -c 'import json, sys; sys.exit(0 if json.load(open(sys.argv[1]))["milters"]["all"]["ratio"] > 0 else 1)' \
    "$res/latest.json"
tap_check "the table has a row for the headline (all, mx, 2k)" grep -Eq '^\| all \| mx \| 2k \| [0-9.]+ ' "$res/latest.md"
tap_check "the milters' CPU is split into user and kernel time (cgroup cpuacct.stat)" \
    python3 -c 'import json, sys; d = json.load(open(sys.argv[1]))["milters"]["all"]["2k"]; sys.exit(0 if 0 <= d["milter_kernel_share"] <= 1 else 1)' \
    "$res/latest.json"
tap_check "the set-up checks found tagging and signing at work" \
    sh -c '! grep -q "check FAILED" "$1" && grep -q "check: sub-all tag" "$1"' _ "$res/latest.md"
tap_diag "$(echo "$out" | tail -n 45 | tr '\n' '|')"
tap_done
