#!/usr/bin/env python3
"""sip_report.py -- the report of bench/run sip (bench/sip.sh): latency per
path (median, p99, SIP/normal), msg/s per path with 1 and 10 submission
sessions (SIP/normal per round), what a SIP session adds per message (site
A's postlink-sipd log and Postfix's delivery times) and whether messages
share calls; writes OUT/latest-sip.md and OUT/latest-sip.json (section "sip").
usage: sip_report.py RUNS.tsv LATENCY.tsv COUNTS.txt SIPD-A.log SIPD-B.log MAILLOG OUTDIR key=value..."""
import json
import math
import re
import statistics
import sys


def med(v):
    return statistics.median(v) if v else 0.0


def p99(v):
    """Nearest-rank 99th percentile."""
    if not v:
        return 0.0
    s = sorted(v)
    return s[max(0, math.ceil(0.99 * len(s)) - 1)]


def main():
    runs_f, lat_f, counts_f, sipd_f, sipd_b_f, maillog_f, out = sys.argv[1:8]
    meta = dict(a.split("=", 1) for a in sys.argv[8:])
    counts = {k: int(v) for k, v in (l.strip().split("=", 1) for l in open(counts_f) if "=" in l)}
    lat = {"sip": [], "normal": []}
    lat_round = {}
    for line in open(lat_f):
        r, path, i, ms, sub_ms = line.rstrip("\n").split("\t")
        lat[path].append(float(ms))
        lat_round.setdefault((int(r), path), []).append(float(ms))
    runs = []
    for line in open(runs_f):
        r, path, s, n, got, us, cus, inv, busy = line.rstrip("\n").split("\t")
        us = int(us)
        runs.append(dict(round=int(r), path=path, sessions=int(s), n=int(n), got=int(got), us=us,
                         client_us=int(cus), invites=int(inv), busy=float(busy),
                         mps=int(got) * 1e6 / us if us > 0 else 0.0))
    sipd = open(sipd_f, errors="replace").read()
    setup = [int(x) for x in re.findall(r": \S+ answered 200 in (\d+) ms", sipd)]
    bye = [int(x) for x in re.findall(r": BYE answered 200 \S+ in (\d+) ms", sipd)]
    invites = len(re.findall(r"Call-ID \S+: INVITE sip:", sipd))
    smtp_b = [int(x) for x in re.findall(r": SMTP over the call ended after (\d+) ms",
                                         open(sipd_b_f, errors="replace").read())]
    mlog = open(maillog_f, errors="replace").read()
    su, nu = meta.get("sip_user", ""), meta.get("normal_user", "")
    d_re = r"delays=[0-9.]+/[0-9.]+/[0-9.]+/([0-9.]+), .*status=sent"
    d_sip = [float(x) for x in re.findall(r"to=<%s>, relay=\S*sipd\.lmtp.*?%s" % (re.escape(su), d_re), mlog)]
    d_norm = [float(x) for x in re.findall(r"to=<%s>, relay=(?!\S*sipd)\S+.*?%s" % (re.escape(nu), d_re), mlog)]
    sip_msgs = len(re.findall(r"to=<%s>, relay=\S*sipd\.lmtp.*status=sent \(250 2\.0\.0 delivered over SIP"
                              % re.escape(su), mlog))
    lmtp_deliveries = len(re.findall(r"to=<%s>, relay=\S*sipd\.lmtp.*status=sent" % re.escape(su), mlog))
    fallbacks = len(re.findall(r"recipient\(s\) the normal way", sipd))
    busy = len(re.findall(r"refusing with 486|: 486: ", open(sipd_b_f, errors="replace").read()))

    js = {"latency": {}, "throughput": {}, "session": {}, "delivery": {}}
    for path, v in lat.items():
        js["latency"][path] = dict(messages=len(v), median_ms=round(med(v), 1), p99_ms=round(p99(v), 1),
                                   min_ms=round(min(v), 1) if v else 0, max_ms=round(max(v), 1) if v else 0,
                                   per_round_median_ms=[round(med(lat_round[k]), 1) for k in sorted(lat_round)
                                                        if k[1] == path])
    ls, ln = js["latency"]["sip"], js["latency"]["normal"]
    js["latency"]["ratio_median"] = round(ls["median_ms"] / ln["median_ms"], 2) if ln["median_ms"] else 0
    js["latency"]["ratio_p99"] = round(ls["p99_ms"] / ln["p99_ms"], 2) if ln["p99_ms"] else 0
    by = {}
    for x in runs:
        by.setdefault((x["path"], x["sessions"]), []).append(x)
    for (path, s), g in sorted(by.items()):
        m = [x["mps"] for x in g]
        js["throughput"].setdefault(path, {})[str(s)] = dict(
            rounds=len(g), n=g[0]["n"], msgs_per_s=round(med(m), 1), msgs_per_s_min=round(min(m), 1),
            msgs_per_s_max=round(max(m), 1), delivered=sum(x["got"] for x in g), sent=sum(x["n"] for x in g),
            in_flight_mean=round(med([x["busy"] / (x["us"] / 1e6) for x in g if x["us"] > 0]), 2),
            invites=sum(x["invites"] for x in g),
            per_round=[dict(round=x["round"], msgs_per_s=round(x["mps"], 1), seconds=round(x["us"] / 1e6, 3),
                            client_seconds=round(x["client_us"] / 1e6, 3)) for x in g])
    for s in sorted({x["sessions"] for x in runs}):
        sp = {x["round"]: x["mps"] for x in by.get(("sip", s), [])}
        nm = {x["round"]: x["mps"] for x in by.get(("normal", s), [])}
        rat = [sp[r] / nm[r] for r in sorted(set(sp) & set(nm)) if nm[r] > 0]
        js["throughput"].setdefault("ratio", {})[str(s)] = dict(
            median=round(med(rat), 2), min=round(min(rat), 2) if rat else 0, max=round(max(rat), 2) if rat else 0)
    js["session"] = dict(
        calls=invites, sip_messages=sip_msgs, lmtp_deliveries=lmtp_deliveries,
        fallbacks=fallbacks, busy_refusals_site_b=busy,
        calls_per_delivery=round(invites / lmtp_deliveries, 3) if lmtp_deliveries else 0,
        invite_to_200_median_ms=med(setup), invite_to_200_p99_ms=p99(setup),
        bye_median_ms=med(bye), bye_p99_ms=p99(bye),
        callee_smtp_median_ms=med(smtp_b), callee_smtp_p99_ms=p99(smtp_b),
        lmtp_delivery_median_s=round(med(d_sip), 3), smtp_delivery_median_s=round(med(d_norm), 3),
        delivery_added_median_s=round(med(d_sip) - med(d_norm), 3),
        latency_added_median_ms=round(ls["median_ms"] - ln["median_ms"], 1),
        two_recipients_one_number_calls=counts.get("pair_invites", -1))
    c = counts
    problems = []
    if c["got_sip"] != c["sent_sip"]:
        problems.append("%s: %d of %d in the maildir" % (su, c["got_sip"], c["sent_sip"]))
    if c["got_normal"] != c["sent_normal"]:
        problems.append("%s: %d of %d in the maildir" % (nu, c["got_normal"], c["sent_normal"]))
    if c["got_pair"] != c["sent_pair"]:
        problems.append("second recipient of the two-recipient message: %d of %d" % (c["got_pair"], c["sent_pair"]))
    want = c["sent_sip"] + c["sent_normal"]
    if c["message_ids"] != want or c["unique_message_ids"] != want:
        problems.append("Message-IDs at site B: %d, %d distinct, %d sent" % (c["message_ids"],
                                                                             c["unique_message_ids"], want))
    if c["via_sip"] + fallbacks < c["sent_sip"] or c["via_mx"] < c["sent_normal"]:
        problems.append("site A logged %d over SIP (of %d) and %d to site B's MX (of %d)" % (
            c["via_sip"], c["sent_sip"], c["via_mx"], c["sent_normal"]))
    if invites != lmtp_deliveries:
        problems.append("%d INVITEs for %d deliveries to postlink-sipd in the measured runs" % (
            invites, lmtp_deliveries))
    if c.get("pair_invites") != 1:
        problems.append("the two-recipient message made %s calls, not 1" % c.get("pair_invites"))
    js["delivery"] = dict(counts, ok=not problems, problems=problems)
    doc = {"sip": js, "meta": meta}
    with open(out + "/latest-sip.json", "w") as f:
        json.dump(doc, f, indent=2, sort_keys=True)
        f.write("\n")

    se = js["session"]
    L = ["# bench/run sip", "",
         "Two private Postfix %s sites on 127.0.0.1 (A) and 127.0.0.2 (B), Kamailio %s between them;"
         " alice submits with SASL on site A's submission port to %s (routed to %s: postlink-route, site A's"
         " postlink-sipd over LMTP, a call to site B's postlink-sipd, SMTP over the call's TCP connection to"
         " site B's SIP listener) or to %s (the normal way: site A's smtp(8) to site B's MX). %s round(s),"
         " interleaved; %s messages per throughput run, %s per path and round for the latency; a 2 KB list"
         " mail (bench/msg.sh)." % (meta.get("postfix", "?"), meta.get("kamailio", "?"), su, meta.get("number"),
                                     nu, meta.get("rounds"), meta.get("n"), meta.get("n_latency")),
         "", "## Latency: submission to the file in site B's maildir", "",
         "One message at a time, the paths alternating; from just before the connect to the file in new/.", "",
         "| path | messages | median ms | p99 ms | min-max ms |", "| --- | ---: | ---: | ---: | ---: |"]
    for path in ("sip", "normal"):
        d = js["latency"][path]
        L.append("| %s | %d | %.1f | %.1f | %.1f-%.1f |" % (path, d["messages"], d["median_ms"], d["p99_ms"],
                                                            d["min_ms"], d["max_ms"]))
    L += ["", "SIP/normal: median %.2f, p99 %.2f." % (js["latency"]["ratio_median"], js["latency"]["ratio_p99"]),
          "", "## Throughput", "",
          "bench/pl-smtp-load with S parallel submission sessions (one message per connection), timed until"
          " the last message is in site B's maildir. *In flight*: Postfix's delivery times (delays=.../d)"
          " summed over the run's wall time, the mean number of deliveries (SIP calls on the SIP path) at"
          " once; site A's lmtp(8) may run %s deliveries to postlink-sipd at once." % meta.get("lmtp_concurrency", "?"),
          "", "| path | sessions | msg/s median | min-max | SIP/normal [min-max] | in flight | INVITEs / messages |",
          "| --- | ---: | ---: | ---: | --- | ---: | --- |"]
    for path in ("sip", "normal"):
        for s, d in sorted(js["throughput"].get(path, {}).items(), key=lambda kv: int(kv[0])):
            r = js["throughput"]["ratio"].get(s, {})
            L.append("| %s | %s | %.1f | %.1f-%.1f | %s | %.2f | %s |" % (
                path, s, d["msgs_per_s"], d["msgs_per_s_min"], d["msgs_per_s_max"],
                "%.2f [%.2f-%.2f]" % (r["median"], r["min"], r["max"]) if path == "sip" and r else "-",
                d["in_flight_mean"], "%d / %d" % (d["invites"], d["delivered"]) if path == "sip" else "-"))
    L += ["", "## What a SIP session adds per message", "",
          "- call set-up (INVITE to 200, site A's postlink-sipd log): median %s ms, p99 %s ms;"
          " BYE answered: median %s ms, p99 %s ms; the SMTP session over the call (site B's postlink-sipd,"
          " from its answer to the end of the SMTP session, connection, token, XCLIENT and its Postfix's greeting included): median %s ms, p99 %s ms." % (
              se["invite_to_200_median_ms"], se["invite_to_200_p99_ms"], se["bye_median_ms"], se["bye_p99_ms"],
              se["callee_smtp_median_ms"], se["callee_smtp_p99_ms"]),
          "- delivery time at site A (Postfix delays=.../d): LMTP to postlink-sipd, call and"
          " SMTP over it included, median %.3f s; smtp(8) to site B's MX median %.3f s; the SIP path adds"
          " %+.3f s. Submission-to-maildir latency: %+.1f ms (medians)." % (
              se["lmtp_delivery_median_s"], se["smtp_delivery_median_s"], se["delivery_added_median_s"],
              se["latency_added_median_ms"]),
          "- sessions are not reused: one call per LMTP delivery, so per message. The measured runs placed %d"
          " calls for %d deliveries to postlink-sipd (%.3f per delivery). Several recipients of one message"
          " with one number share its call: a message to %s and a second recipient with the same number made"
          " %d call(s)." % (se["calls"], se["lmtp_deliveries"], se["calls_per_delivery"], su,
                           se["two_recipients_one_number_calls"]),
          "- %s" % ("no call failed: every delivery to postlink-sipd went over SIP (%d)." % se["sip_messages"]
                    if not fallbacks else
                    "%d of %d deliveries to postlink-sipd went the normal way after a failed call (%d refused"
                    " 486 Busy Here by site B, sip_max_incoming): the SIP rows include them." % (
                        fallbacks, lmtp_deliveries, busy)),
          "- the normal path's smtp(8) may reuse a connection to site B's MX under load (Postfix's connection"
          " cache on demand); the SIP path never does.", ""]
    L.append("Machine and run: " + ", ".join("%s %s" % (k, v) for k, v in meta.items()))
    L.append("")
    if problems:
        L.append("Delivered: FAILED: " + "; ".join(problems) + ".")
    else:
        L.append("Delivered: every message (%d over SIP to %s, %d the normal way to %s, and the second"
                 " recipient of the two-recipient message), each once (%d distinct Message-IDs at site B)." % (
                     c["sent_sip"], su, c["sent_normal"], nu, c["unique_message_ids"]))
    with open(out + "/latest-sip.md", "w") as f:
        f.write("\n".join(L) + "\n")


if __name__ == "__main__":
    main()
