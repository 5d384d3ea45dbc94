#!/usr/bin/env python3
# mirror_report.py -- bench/run mirror's report: reads the results table
# bench/mirror.sh wrote (tool, phase, seconds, bytes, delivered, extra) and
# writes latest-mirror.md and latest-mirror.json into OUT, with postlink's
# ratios against the peers and the ideal measured in the same run.
# usage: mirror_report.py RESULTS OUT N N_KILL N_BIG MB CORES
import json, os, sys, time

res, out, n, n_kill, n_big, mb, cores = sys.argv[1:8]
n, n_kill, n_big = int(n), int(n_kill), int(n_big)
rows = {}
for line in open(res):
    f = line.rstrip("\n").split("\t")
    if len(f) < 6:
        continue
    tool, phase, secs, byts, deliv, extra = f[:6]
    kv = dict(x.split("=", 1) for x in extra.split() if "=" in x)
    rows.setdefault(tool, {})[phase] = {"seconds": float(secs), "bytes": int(byts or 0),
                                        "delivered": int(deliv or 0), "extra": kv}

tools = ["postlink", "postlink_push", "fetchmail", "fetchmail_fastuidl", "getmail", "mpop"]
names = {"postlink": "postlink-mirrord", "postlink_push": "postlink-mirrord -> push store",
         "fetchmail": "fetchmail --keep --uidl",
         "fetchmail_fastuidl": "fetchmail, fastuidl 1", "getmail": "getmail6", "mpop": "mpop"}
J = {"n": n, "n_kill": n_kill, "n_big": n_big, "mailbox_mb": float(mb), "cores": int(cores),
     "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "tools": {}}
ideal_incr = rows.get("ideal", {}).get("incr", {}).get("bytes", 0)
ideal_big = rows.get("ideal", {}).get("big", {}).get("bytes", 0)
J["ideal"] = {"incr_bytes": ideal_incr, "big_bytes": ideal_big}
J["postfix_alone_first_seconds"] = rows.get("postfix_alone", {}).get("first", {}).get("seconds")
ok = True
for t in tools:
    r = rows.get(t, {})
    g = lambda ph, k, d=None: r.get(ph, {}).get(k, d)
    kill = r.get("kill", {})
    J["tools"][t] = {
        "first": {"seconds": g("first", "seconds"), "bytes": g("first", "bytes"),
                  "delivered": g("first", "delivered"),
                  "seen_set": g("seen_after_first", "delivered")},
        "incr": {"seconds": g("incr", "seconds"), "bytes": g("incr", "bytes"),
                 "ratio_to_ideal": round(g("incr", "bytes", 0) / ideal_incr, 3) if ideal_incr else None},
        "kill": {"delivered_before": int(kill.get("extra", {}).get("before", 0)),
                 "delivered_after": kill.get("delivered"),
                 "duplicates": int(kill.get("extra", {}).get("dups", -1)),
                 "refetched": int(kill.get("extra", {}).get("refetched", -1)),
                 "bytes_after": kill.get("bytes")},
        "big": {"seconds": g("big", "seconds"), "bytes": g("big", "bytes"),
                "ratio_to_ideal": round(g("big", "bytes", 0) / ideal_big, 3) if ideal_big else None},
    }
    if g("first", "delivered") != n:
        ok = False
P = J["tools"]["postlink"]
PP = J["tools"]["postlink_push"]
mp = J["tools"]["mpop"]
J["postlink"] = {
    "first_vs_mpop": round(P["first"]["seconds"] / mp["first"]["seconds"], 2) if mp["first"]["seconds"] else None,
    "push_first_vs_mpop": round(PP["first"]["seconds"] / mp["first"]["seconds"], 2)
    if mp["first"]["seconds"] and PP["first"]["seconds"] else None,
    "first_vs_postfix_alone": round(P["first"]["seconds"] / J["postfix_alone_first_seconds"], 2)
    if J["postfix_alone_first_seconds"] else None,
    "every_tool_delivered_all": ok,
}
with open(os.path.join(out, "latest-mirror.json"), "w") as fh:
    json.dump({"mirror": J}, fh, indent=1)

def kb(b):
    return "-" if b is None else "%.1f kB" % (b / 1000.0)

L = []
L.append("# bench/run mirror: %s" % J["date"])
L.append("")
L.append("One run, one private Dovecot 2.3 mailbox on 127.0.0.1, %d cores. First sync of %d "
         "messages (%s MB), then 10 new and 10 taken; %d messages with 1 new; a first sync of "
         "%d killed with SIGKILL at about half and run again. Bytes are what Dovecot sent "
         "(its pop3_logout_format counters); \\Seen is counted on the primary after each first sync."
         % (int(cores), n, mb, n_big, n_kill))
L.append("")
L.append("| tool | first sync | bytes | \\Seen set | incr. (+10 -10) | bytes (x ideal) | kill: dups | refetched | %d +1 | bytes (x ideal) |" % n_big)
L.append("|---|---|---|---|---|---|---|---|---|---|")
for t in tools:
    x = J["tools"][t]
    L.append("| %s | %.2f s | %s | %s | %.2f s | %s (%s) | %s | %s | %.2f s | %s (%s) |" % (
        names[t], x["first"]["seconds"] or 0, kb(x["first"]["bytes"]), x["first"]["seen_set"],
        x["incr"]["seconds"] or 0, kb(x["incr"]["bytes"]), x["incr"]["ratio_to_ideal"],
        x["kill"]["duplicates"], x["kill"]["refetched"],
        x["big"]["seconds"] or 0, kb(x["big"]["bytes"]), x["big"]["ratio_to_ideal"]))
L.append("")
L.append("Ideal bytes (the new messages plus one UIDL listing): incremental %s, %d +1 %s."
         % (kb(ideal_incr), n_big, kb(ideal_big)))
L.append("")
L.append("postlink's first sync: %sx mpop's, %sx Postfix alone accepting the same number of "
         "messages on the same listener (%.2f s, bench/pl-smtp-load). postlink hands every copy "
         "to Postfix (SMTP into a durable queue, through the mirror guard); the peers write "
         "files (mpop and getmail6 a maildir, fetchmail an MDA per message)."
         % (J["postlink"]["first_vs_mpop"], J["postlink"]["first_vs_postfix_alone"],
            J["postfix_alone_first_seconds"] or 0))
L.append("")
L.append("Into the push store (--deliver-to push: each copy and its record in one durable "
         "transaction, no SMTP): first sync %sx mpop's." % J["postlink"]["push_first_vs_mpop"])
L.append("")
L.append("Delivered: %s" % ("every tool delivered all %d messages of the first sync" % n if ok
                             else "NOT every tool delivered all %d (see the json)" % n))
with open(os.path.join(out, "latest-mirror.md"), "w") as fh:
    fh.write("\n".join(L) + "\n")
print("\n".join(L))
# the run fails when postlink itself did not deliver every message once
good = True
for t in ("postlink", "postlink_push"):
    pk = J["tools"][t]["kill"]
    good = good and J["tools"][t]["first"]["delivered"] == n and pk["delivered_after"] == n_kill \
        and 0 <= pk["duplicates"] <= 1
sys.exit(0 if good else 1)
