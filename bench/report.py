#!/usr/bin/env python3
"""report.py -- the table of bench/run milters: reads the runs bench/milters.sh
recorded (one line per round, configuration and shape), computes per
configuration and shape the median and range of msg/s, the ratio to the bare
run of the same round, shape and listener, and the CPU per message in the
milters and in Postfix; writes OUT/latest.md and OUT/latest.json.
usage: report.py RUNS.tsv SKIPPED.tsv NOTES.txt OUTDIR key=value..."""
import json
import statistics
import sys


def med(v):
    return statistics.median(v) if v else 0.0


def main():
    runs_f, skipped_f, notes_f, out = sys.argv[1:5]
    meta = dict(a.split("=", 1) for a in sys.argv[5:])
    runs = []   # dicts
    order = []  # configurations in first-seen order
    with open(runs_f) as f:
        for line in f:
            r, c, l, shape, n, got, us, p_ns, m_ns, l_ns, conns, warn, cus, m_ut, m_st = \
                line.rstrip("\n").split("\t")
            got, us = int(got), int(us)
            runs.append(dict(round=int(r), cfg=c, listener=l, shape=shape, n=int(n), got=got,
                             us=us, client_us=int(cus), mps=got * 1e6 / us if us > 0 else 0.0,
                             cpu_p=int(p_ns) / 1000 / max(got, 1), cpu_m=int(m_ns) / 1000 / max(got, 1),
                             cpu_l=int(l_ns) / 1000 / max(got, 1), conns=int(conns), warn=int(warn),
                             m_ut=int(m_ut), m_st=int(m_st)))
    skipped = []
    with open(skipped_f) as f:
        for line in f:
            if line.strip():
                c, why = line.rstrip("\n").split("\t", 1)
                skipped.append((c, why))
    notes = [l.rstrip("\n") for l in open(notes_f) if l.strip()]
    bare_of = {"mx": "bare", "sub": "sub-bare"}
    bare = {(x["round"], x["listener"], x["shape"]): x["mps"] for x in runs if x["cfg"] == bare_of[x["listener"]]}
    groups = {}
    for x in runs:
        key = (x["cfg"], x["shape"])
        if key not in groups:
            groups[key] = []
            if x["cfg"] not in order:
                order.append(x["cfg"])
        b = bare.get((x["round"], x["listener"], x["shape"]))
        x["ratio"] = x["mps"] / b if b else 0.0
        groups[key].append(x)
    shapes_order = ["2k", "real2k", "real100k"]
    cfg_rank = {c: i for i, c in enumerate(order)}
    cfg_rank.update({c: i for i, c in enumerate(
        ["bare", "ref1", "ref2", "sync", "tag", "route", "route-kw", "all", "all-combined",
         "all-route", "all-route-combined", "all-mirror-combined", "all-libmilter", "all-combined-libmilter", "opendkim",
         "sub-bare", "sub-all", "sub-all-combined"])})
    keys = sorted(groups, key=lambda k: (shapes_order.index(k[1]) if k[1] in shapes_order else 9,
                                         cfg_rank.get(k[0], 99)))
    js = {}
    rows = []
    for c, shape in keys:
        g = groups[(c, shape)]
        mps = [x["mps"] for x in g]
        rat = [x["ratio"] for x in g]
        d = dict(listener=g[0]["listener"], rounds=len(g), n=g[0]["n"],
                 msgs_per_s=round(med(mps), 1), msgs_per_s_min=round(min(mps), 1),
                 msgs_per_s_max=round(max(mps), 1),
                 ratio=round(med(rat), 3), ratio_min=round(min(rat), 3), ratio_max=round(max(rat), 3),
                 cpu_us_milter=round(med([x["cpu_m"] for x in g]), 1),
                 cpu_us_postfix=round(med([x["cpu_p"] for x in g]), 1),
                 cpu_us_load=round(med([x["cpu_l"] for x in g]), 1),
                 milter_kernel_share=round(sum(x["m_st"] for x in g) /
                                           max(sum(x["m_ut"] + x["m_st"] for x in g), 1), 2),
                 delivered=sum(x["got"] for x in g), sent=sum(x["n"] for x in g),
                 connects_per_msg=round(sum(x["conns"] for x in g) / max(sum(x["n"] for x in g), 1), 3),
                 milter_warnings=sum(x["warn"] for x in g),
                 per_round=[dict(round=x["round"], msgs_per_s=round(x["mps"], 1), ratio=round(x["ratio"], 3),
                                 seconds=round(x["us"] / 1e6, 3), client_seconds=round(x["client_us"] / 1e6, 3),
                                 cpu_us_milter=round(x["cpu_m"], 1), cpu_us_postfix=round(x["cpu_p"], 1))
                            for x in sorted(g, key=lambda x: x["round"])])
        js.setdefault(c, {})[shape] = d
        rows.append((c, shape, d))
    # top level of each configuration: its headline shape (2k on the MX
    # listener, real2k on the submission listener)
    for c, v in js.items():
        head = v.get("2k") or v.get("real2k")
        if head:
            for k in ("ratio", "ratio_min", "ratio_max", "msgs_per_s", "cpu_us_milter", "cpu_us_postfix"):
                v[k] = head[k]
            v["headline_shape"] = "2k" if "2k" in v else "real2k"
    for c, why in skipped:
        js[c] = {"skipped": why}
    doc = {"milters": js, "meta": meta, "notes": notes}
    with open(out + "/latest.json", "w") as f:
        json.dump(doc, f, indent=2, sort_keys=True)
        f.write("\n")

    lines = ["# bench/run milters", "",
             "Private Postfix %s on 127.0.0.1 relaying to smtp-sink; 10 client sessions, one message per"
             " connection; %s round(s), interleaved; %s messages per 2 KB run, %s per 100 KB run." % (
                 meta.get("postfix", "?"), meta.get("rounds"), meta.get("n"), meta.get("n_100k")),
             "",
             "Shapes: `2k` smtp-source's own message (-l 2048); `real2k` / `real100k` a list mail with 26"
             " header fields (bench/msg.sh), sent by bench/pl-smtp-load. Listener `mx`: unauthenticated mail"
             " for a local user; `sub`: SASL-authenticated mail from a linked sender to an outside address.",
             "Ratio: msg/s over the bare run (same round, shape and listener), median [min-max] over rounds."
             " CPU: microseconds per message (median over rounds) in the milter processes and in Postfix"
             " (master and all its children), from %s." % (
                 "cgroup v1 cpuacct" if meta.get("cpu") == "cgroup" else "/proc/PID/stat"),
             "Routing (postlink-route, every recipient relayed over smtp, so it keeps header and body and"
             " reads its tables per message): `route` alone with empty tables (mail with no number);"
             " `route-kw` alone with 50 keywords and 10 map rows, none matching, so its content rules"
             " decode every message with GMime; `all-route` tag, route and sync as separate milters;"
             " `all-route-combined` postlink-milter with milter_filters = tag, route, sync;"
             " `all-mirror-combined` postlink-milter with milter_filters = mirror, tag, sync (the"
             " mirror filter of capability 2 in front, removing strangers' X-Postlink-Mirror)."
             " `all` stays the headline (tag and sync), comparable with earlier results.",
             "",
             "| configuration | listener | shape | msg/s median | min-max | ratio to bare [min-max] |"
             " CPU us/msg milters | of it in the kernel | CPU us/msg Postfix |",
             "| --- | --- | --- | ---: | ---: | --- | ---: | ---: | ---: |"]
    for c, shape, d in rows:
        lines.append("| %s | %s | %s | %.1f | %.1f-%.1f | %.2f [%.2f-%.2f] | %.0f | %s | %.0f |" % (
            c, d["listener"], shape, d["msgs_per_s"], d["msgs_per_s_min"], d["msgs_per_s_max"],
            d["ratio"], d["ratio_min"], d["ratio_max"], d["cpu_us_milter"],
            "%.0f %%" % (100 * d["milter_kernel_share"]) if d["cpu_us_milter"] >= 50 else "-",
            d["cpu_us_postfix"]))
    for c, why in skipped:
        lines.append("| %s | | | %s | | | | | |" % (c, why))
    lines += ["", "Machine and run: " + ", ".join("%s %s" % (k, v) for k, v in meta.items()), ""]
    bad = [(c, s, d) for c, s, d in rows if d["delivered"] < d["sent"]]
    lines.append("Delivered at the sink: %s." % (
        "every message of every run" if not bad else
        "; ".join("%s/%s %d of %d" % (c, s, d["delivered"], d["sent"]) for c, s, d in bad)))
    cpm = sorted(set(d["connects_per_msg"] for c, s, d in rows))
    lines.append("Connections per message seen by Postfix: %s." % ", ".join("%g" % x for x in cpm))
    w = [(c, s, d["milter_warnings"]) for c, s, d in rows if d["milter_warnings"]]
    if w:
        lines.append("Milter warnings or rejects in the Postfix log: " +
                     ", ".join("%s/%s %d" % x for x in w) + ".")
    # the target: all postlink milters cost less than OpenDKIM signing in every round
    for shape in shapes_order:
        dk = {x["round"]: x["mps"] for x in groups.get(("opendkim", shape), [])}
        for c in ("all", "all-combined", "all-route", "all-route-combined", "all-libmilter",
                  "all-combined-libmilter"):
            g = groups.get((c, shape), [])
            both = [x for x in g if x["round"] in dk]
            if both:
                k = sum(1 for x in both if x["mps"] > dk[x["round"]])
                lines.append("%s/%s faster than opendkim/%s in %d of %d rounds." % (c, shape, shape, k, len(both)))
    # what routing adds to the chain, per round against the same round's run without it
    for shape in shapes_order:
        for with_r, without in (("all-route", "all"), ("all-route-combined", "all-combined"),
                                ("route-kw", "route")):
            a = {x["round"]: x for x in groups.get((with_r, shape), [])}
            b = {x["round"]: x for x in groups.get((without, shape), [])}
            both = sorted(set(a) & set(b))
            if both:
                r = [a[k]["mps"] / b[k]["mps"] for k in both if b[k]["mps"] > 0]
                dc = [a[k]["cpu_m"] - b[k]["cpu_m"] for k in both]
                lines.append("%s/%s against %s/%s: msg/s ratio %.2f [%.2f-%.2f], milter CPU %+.0f us/msg"
                             " (medians over %d rounds)." % (with_r, shape, without, shape, med(r),
                                                              min(r), max(r), med(dc), len(both)))
    lines.append("Not in any CPU column: Dovecot (SASL for the submission listener) and postlink-syncd"
                 " (idle for plain mail); the load client and smtp-sink are in the JSON (cpu_us_load).")
    for n in notes:
        lines.append("- " + n)
    with open(out + "/latest.md", "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
