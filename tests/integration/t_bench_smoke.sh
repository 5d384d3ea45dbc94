#!/usr/bin/env bash
# t_bench_smoke.sh -- the benchmarks run and report what they promise (the
# real runs live in bench/): the store benchmark prints one row per mode and
# writer count with a positive rate; "bench/run milters --smoke" (1 round,
# 20 messages per run, this build) runs every configuration (both
# engines, separate and combined), with a positive msg/s for each shape,
# every message at the
# sink, and a JSON report with the headline ratio milters.all.ratio;
# "bench/run mirror --smoke" (Dovecot, postlink-mirrord, fetchmail, getmail6,
# mpop on 40 messages), "bench/run sip --smoke" (two sites, Kamailio, 1 round, a handful of
# messages) reports both paths with positive rates, medians and ratios,
# one call per SIP message, and every message delivered; "bench/run push
# --smoke" (20 messages, 3 devices with 5 each) has a row for postlink,
# IMAP and POP3, postlink drains N in N+1 requests, IMAP and POP3 in >= 2N,
# every message reaches every client, and pushd's RSS is reported.
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
mx = ["bare", "ref1", "ref2", "sync", "tag", "route", "route-kw", "all", "all-combined",
      "all-route", "all-route-combined", "all-libmilter",
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
tap_check "postlink-route routed the keyword controls and gave no benchmark message a number" \
    sh -c 'grep -q "check: route-kw route a message naming a keyword" "$1" &&
           grep -q "check: all-route-combined leave the realistic 100 KB message without a number" "$1" &&
           grep -q "check: postlink-route gave no benchmark message a number" "$1"' _ "$res/latest.md"
tap_diag "$(echo "$out" | tail -n 45 | tr '\n' '|')"

mkdir -p "$res/sip"
t0=$(date +%s)
out=$("${abs_top_srcdir:-.}/bench/run" sip --smoke --out "$res/sip" 2>&1); rc=$?
tap_check "bench/run sip --smoke exits 0 (in $(( $(date +%s) - t0 )) s)" test $rc = 0
tap_check "it writes latest-sip.md and latest-sip.json" test -s "$res/sip/latest-sip.md" -a -s "$res/sip/latest-sip.json"
verdict=$(python3 - "$res/sip/latest-sip.json" <<'PY' 2>&1
import json, sys
s = json.load(open(sys.argv[1]))["sip"]
bad = []
for path in ("sip", "normal"):
    l = s["latency"].get(path, {})
    if not (l.get("messages", 0) > 0 and l.get("median_ms", 0) > 0 and l.get("p99_ms", 0) > 0):
        bad.append("latency/%s: %s" % (path, l))
    for n in ("1", "10"):
        t = s["throughput"].get(path, {}).get(n, {})
        if not (t.get("msgs_per_s", 0) > 0 and t.get("delivered") == t.get("sent", -1) > 0):
            bad.append("throughput/%s/%s: %s" % (path, n, t))
for k in ("ratio_median", "ratio_p99"):
    if not s["latency"].get(k, 0) > 0:
        bad.append("latency %s %s" % (k, s["latency"].get(k)))
for n in ("1", "10"):
    if not s["throughput"].get("ratio", {}).get(n, {}).get("median", 0) > 0:
        bad.append("throughput ratio %s missing" % n)
if not s["delivery"].get("ok"):
    bad.append("delivery: %s" % s["delivery"].get("problems"))
ss = s["session"]
if not (ss["calls"] == ss["lmtp_deliveries"] > 0 and ss["fallbacks"] == 0 and ss["two_recipients_one_number_calls"] == 1):
    bad.append("calls %s for %s deliveries (%s fallbacks), %s for the two-recipient message" % (
        ss["calls"], ss["lmtp_deliveries"], ss["fallbacks"], ss["two_recipients_one_number_calls"]))
print("; ".join(bad) if bad else "ok")
PY
)
tap_check "both paths: latency medians, p99s, rates and ratios, one call per message, all delivered: $verdict" \
    test "$verdict" = ok
tap_check "the report says every message was delivered" grep -q '^Delivered: every message' "$res/sip/latest-sip.md"
tap_diag "$(echo "$out" | tail -n 12 | tr '\n' '|')"

mkdir -p "$res/mirror"
t0=$(date +%s)
out=$("${abs_top_srcdir:-.}/bench/run" mirror --smoke --out "$res/mirror" 2>&1); rc=$?
tap_check "bench/run mirror --smoke exits 0 (in $(( $(date +%s) - t0 )) s)" test $rc = 0
tap_check "it writes latest-mirror.md and latest-mirror.json" test -s "$res/mirror/latest-mirror.md" -a -s "$res/mirror/latest-mirror.json"
verdict=$(python3 - "$res/mirror/latest-mirror.json" <<'PY' 2>&1
import json, sys
m = json.load(open(sys.argv[1]))["mirror"]
bad = []
for t, v in m["tools"].items():
    if v["first"]["delivered"] != m["n"]:
        bad.append("%s delivered %s of %s" % (t, v["first"]["delivered"], m["n"]))
    if not (v["first"]["bytes"] > 0 and v["incr"]["bytes"] > 0 and v["big"]["bytes"] > 0):
        bad.append("%s: no bytes counted at the primary" % t)
p = m["tools"]["postlink"]
if p["first"]["seen_set"] != 0:
    bad.append("postlink set \\Seen on %s" % p["first"]["seen_set"])
for t in ("postlink", "postlink_push"):
    k = m["tools"][t]["kill"]
    if not (0 <= k["duplicates"] <= 1 and k["delivered_after"] == m["n_kill"]):
        bad.append("%s after the kill: %s" % (t, k))
if m["tools"]["postlink_push"]["kill"]["duplicates"] != 0:
    bad.append("the push store got a duplicate after kill -9 (one transaction: none expected)")
if not (p["big"]["ratio_to_ideal"] <= 1.0):
    bad.append("postlink's bytes for 1 new: %s x ideal" % p["big"]["ratio_to_ideal"])
if not (p["incr"]["bytes"] < m["tools"]["fetchmail"]["incr"]["bytes"]):
    bad.append("postlink's incremental is not below fetchmail's full listing")
if not (m["postlink"]["first_vs_mpop"] > 0 and m["postlink"]["first_vs_postfix_alone"] > 0):
    bad.append("ratios missing: %s" % m["postlink"])
print("; ".join(bad) if bad else "ok")
PY
)
tap_check "every tool delivered the first sync; postlink: no \\Seen, <= 1 duplicate after kill -9, bytes for 1 new <= ideal, ratios: $verdict" \
    test "$verdict" = ok
tap_diag "$(echo "$out" | tail -n 10 | tr '\n' '|')"

mkdir -p "$res/push"
t0=$(date +%s)
out=$("${abs_top_srcdir:-.}/bench/run" push --smoke --out "$res/push" 2>&1); rc=$?
tap_check "bench/run push --smoke exits 0 (in $(( $(date +%s) - t0 )) s)" test $rc = 0
tap_check "it writes latest-push.md and latest-push.json" test -s "$res/push/latest-push.md" -a -s "$res/push/latest-push.json"
verdict=$(python3 - "$res/push/latest-push.json" <<'PY' 2>&1
import json, sys
p = json.load(open(sys.argv[1]))["push"]
n, bad = p["n"], []
d = p["drain"]
if n != 20:
    bad.append("n is %s, not the smoke run's 20" % n)
if d["postlink"]["requests"] != n + 1:
    bad.append("postlink took %s requests for %d" % (d["postlink"]["requests"], n))
for t in ("postlink", "imap", "pop3"):
    x = d[t]
    for y in x["rounds"]:
        if not (y["messages"] == y["files"] == n and y["left_on_server"] == 0 and y["seconds"] > 0):
            bad.append("%s: %s messages, %s files, %s left" % (t, y["messages"], y["files"], y["left_on_server"]))
    if not 0 < x["p50_us"] <= x["p99_us"]:
        bad.append("%s latency p50 %s p99 %s" % (t, x["p50_us"], x["p99_us"]))
    if t != "postlink" and not x["requests"] >= 2 * n:
        bad.append("%s: %s requests for %d" % (t, x["requests"], n))
for l in p["load"]["rounds"]:
    if not (l["devices"] == 3 and l["messages"] == l["expected"] == 15 and l["errors"] == 0
            and l["left_on_server"] == 0 and l["msgs_per_s"] > 0):
        bad.append("load: %s" % l)
if not p["load"]["rounds"]:
    bad.append("no load round")
r = p["rss_kb"]
if not (r["idle"] > 0 and r["max_sampled_under_load"] > 0 and (r["peak_under_load"] or r["idle"]) >= r["idle"]):
    bad.append("rss: %s" % r)
if not p["pushd"]["alive_at_end"]:
    bad.append("postlink-pushd died")
print("; ".join(bad) if bad else "ok")
PY
)
tap_check "postlink 21 requests for 20, IMAP/POP3 >= 40, every client got every message, 3 devices at once, RSS: $verdict" \
    test "$verdict" = ok
tap_check "the table has a row for postlink, IMAP and POP3" \
    sh -c 'grep -q "^| postlink-pushd " "$1" && grep -q "^| Dovecot IMAP " "$1" && grep -q "^| Dovecot POP3 " "$1"' _ "$res/push/latest-push.md"
tap_check "the report says N+1 was met" grep -q '^postlink: 21 requests for 20 messages (target N+1 = 21): met' "$res/push/latest-push.md"
tap_diag "$(echo "$out" | tail -n 12 | tr '\n' '|')"
tap_done
