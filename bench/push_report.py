#!/usr/bin/env python3
# push_report.py -- bench/run push's report: reads the key=value lines
# bench/push.sh wrote and pl-push-client's per-request microseconds, and
# writes latest-push.md and latest-push.json into OUT: requests and wall
# time (median of the rounds) for one device to drain N (postlink against IMAP and POP3 on
# Dovecot, with the ratios), the fetch+ack latency, messages/s of many
# devices at once, and postlink-pushd's RSS.  Exits 1 when postlink did
# not take N+1 requests for N, lost a message, or failed under the load.
# usage: push_report.py RESULTS RUNDIR OUT (RUNDIR: the clients' *.lat files)
import json, os, sys, time

res, rundir, out = sys.argv[1:4]
R = {}
for line in open(res):
    k, _, v = line.rstrip("\n").partition("=")
    R[k] = v


def kv(s):
    return {a: b for a, b in (x.split("=", 1) for x in s.split() if "=" in x)}


def num(x, d=0):
    try:
        return float(x) if "." in str(x) else int(x)
    except (TypeError, ValueError):
        return d


def pct(v, p):
    return v[int((len(v) - 1) * p)] if v else 0


n, devices, per_dev = num(R.get("n")), num(R.get("devices")), num(R.get("per_device"))
rounds = num(R.get("rounds"), 1)


def med(v):
    v = sorted(v)
    return (v[(len(v) - 1) // 2] + v[len(v) // 2]) / 2 if v else 0


def lats(path):
    try:
        return [int(x) for x in open(path).read().split()]
    except OSError:
        return []


J = {"n": n, "rounds": rounds, "devices": devices, "per_device": per_dev,
     "cores": num(R.get("cores")),
     "cpu": R.get("cpu", ""), "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
     "loadavg_before": R.get("loadavg_before"), "loadavg_after": R.get("loadavg_after"),
     "other_processes_busy": num(R.get("other_processes"), -1),
     "other_harness_processes": num(R.get("other_harness_processes"), -1),
     "fill_mb": round(num(R.get("fill_bytes")) / 1e6, 2), "drain": {}}
# per round: postlink from pl-push-client's summary and us= lines, IMAP and
# POP3 from push_dovecot.py's summary and latency file
per = {"postlink": [], "imap": [], "pop3": []}
pool = {"postlink": [], "imap": [], "pop3": []}
for r in range(1, rounds + 1):
    pl = kv(R.get("pl_summary_r%d" % r, ""))
    lat = lats(os.path.join(rundir, "pl-%d.lat" % r))
    pool["postlink"] += lat
    per["postlink"].append({
        "requests": num(pl.get("requests")), "messages": num(pl.get("messages")),
        "redelivered": num(pl.get("redelivered")), "seconds": num(R.get("pl_seconds_r%d" % r), 0.0),
        "files": num(R.get("pl_files_r%d" % r)), "left_on_server": num(R.get("pl_left_r%d" % r), -1),
        "statuses": R.get("pl_status_r%d" % r, "").rstrip(","),
        "in_requests_s": round(sum(lat) / 1e6, 3)})
    for p in ("imap", "pop3"):
        x = kv(R.get("%s_summary_r%d" % (p, r), ""))
        pool[p] += lats(os.path.join(rundir, "%s-%d.lat" % (p, r)))
        per[p].append({"requests": num(x.get("requests")), "messages": num(x.get("messages")),
                       "seconds": num(x.get("seconds"), 0.0),
                       "in_requests_s": num(x.get("in_requests_s"), 0.0),
                       "files": num(R.get("%s_files_r%d" % (p, r))),
                       "left_on_server": num(R.get("%s_left_r%d" % (p, r)), -1)})
for t in per:
    v, lat = per[t], sorted(pool[t])
    secs = [x["seconds"] for x in v]
    x = {"requests": med([y["requests"] for y in v]), "seconds": med(secs),
         "seconds_min": min(secs), "seconds_max": max(secs),
         "in_requests_s": med([y["in_requests_s"] for y in v]),
         "p50_us": pct(lat, 0.5), "p99_us": pct(lat, 0.99), "max_us": lat[-1] if lat else 0,
         "rounds": v}
    x["requests_per_message"] = round(x["requests"] / n, 3) if n else None
    x["msgs_per_s"] = round(n / x["seconds"], 1) if x["seconds"] else None
    J["drain"][t] = x
P = J["drain"]["postlink"]
J["ratios"] = {}
for p in ("imap", "pop3"):
    x = J["drain"][p]
    J["ratios"][p] = {
        "requests": round(x["requests"] / P["requests"], 2) if P["requests"] else None,
        "seconds": round(x["seconds"] / P["seconds"], 2) if P["seconds"] else None,
        "in_requests": round(x["in_requests_s"] / P["in_requests_s"], 2) if P["in_requests_s"] else None,
        "p50": round(x["p50_us"] / P["p50_us"], 2) if P["p50_us"] else None,
        "p99": round(x["p99_us"] / P["p99_us"], 2) if P["p99_us"] else None}
LK = ("devices", "requests", "messages", "bytes", "redelivered", "busy", "refused", "errors",
      "seconds", "msgs_per_s", "p50_us", "p99_us", "max_us", "dev_min", "dev_max")
loads = []
for r in range(1, rounds + 1):
    L = kv(R.get("load_summary_r%d" % r, ""))
    x = {k: num(L.get(k)) for k in LK}
    x.update({"expected": devices * per_dev, "left_on_server": num(R.get("load_left_r%d" % r), -1),
              "first_error": L.get("first_error"), "refused_error": L.get("refused_error"),
              "rss_peak_kb": num(R.get("rss_load_hwm_kb_r%d" % r))
              if R.get("hwm_reset_r%d" % r) == "1" else None,
              "rss_max_sampled_kb": num(R.get("rss_load_max_sampled_kb_r%d" % r))})
    loads.append(x)
J["load"] = {"median": {k: med([x[k] for x in loads]) for k in
                        ("msgs_per_s", "seconds", "p50_us", "p99_us", "max_us")},
             "total": {k: sum(x[k] for x in loads) for k in
                       ("requests", "messages", "busy", "refused", "redelivered", "errors")},
             "rounds": loads}
J["load"]["msgs_per_s_range"] = [min(x["msgs_per_s"] for x in loads), max(x["msgs_per_s"] for x in loads)]
peaks = [x["rss_peak_kb"] for x in loads if x["rss_peak_kb"] is not None]
J["rss_kb"] = {"idle": num(R.get("rss_idle_kb")), "after_fill": num(R.get("rss_filled_kb")),
               "hwm_before_load": num(R.get("hwm_filled_kb")),
               "peak_under_load": max(peaks) if peaks else None,
               "max_sampled_under_load": max(x["rss_max_sampled_kb"] for x in loads),
               "after_load": num(R.get("rss_after_kb"))}
J["other_processes_seen"] = R.get("other_processes_seen", "")
J["pushd"] = {"alive_at_end": R.get("pushd_alive") == "1", "stored": num(R.get("pushd_stored")),
              "log_problem_lines": num(R.get("pushd_log_problems"), -1),
              "sendings_not_recorded": num(R.get("pushd_not_recorded"), -1),
              "lmtp_451": num(R.get("pushd_lmtp_451"), -1),
              "lmtp_451_one_device_fill": num(R.get("lmtp_451_fill"), -1),
              "lmtp_451_load_fills": [num(R.get("lmtp_451_r%d" % r)) - num(R.get(
                  "lmtp_451_r%d" % (r - 1) if r > 1 else "lmtp_451_fill")) for r in range(1, rounds + 1)],
              "lmtp_slots_busy": num(R.get("pushd_lmtp_slots_busy"), -1)}
problems = []
for r, x in enumerate(P["rounds"], 1):
    if x["requests"] != n + 1:
        problems.append("round %d: postlink took %s requests for %d (not N+1)" % (r, x["requests"], n))
    if not (x["messages"] == x["files"] == n and x["left_on_server"] == 0 and x["redelivered"] == 0):
        problems.append("round %d: postlink drain: %s messages, %s files, %s redelivered, %s left"
                        % (r, x["messages"], x["files"], x["redelivered"], x["left_on_server"]))
for p in ("imap", "pop3"):
    for r, x in enumerate(J["drain"][p]["rounds"], 1):
        if not (x["messages"] == x["files"] == n and x["left_on_server"] == 0):
            problems.append("round %d: %s drain: %s messages, %s files, %s left"
                            % (r, p, x["messages"], x["files"], x["left_on_server"]))
for r, ld in enumerate(loads, 1):
    if not (ld["messages"] == ld["expected"] and ld["errors"] == 0 and ld["left_on_server"] == 0
            and ld["dev_min"] == ld["dev_max"] == per_dev):
        problems.append("load round %d: %s of %s messages, %s errors (%s), %s left, per device %s..%s"
                        % (r, ld["messages"], ld["expected"], ld["errors"], ld["first_error"],
                           ld["left_on_server"], ld["dev_min"], ld["dev_max"]))
if not J["pushd"]["alive_at_end"]:
    problems.append("postlink-pushd is not running at the end")
if J["pushd"]["stored"] != rounds * (n + devices * per_dev):
    problems.append("pushd stored %s, sent %d" % (J["pushd"]["stored"], rounds * (n + devices * per_dev)))
J["problems"] = problems
with open(os.path.join(out, "latest-push.json"), "w") as fh:
    json.dump({"push": J}, fh, indent=1)


def ms(us):
    return "%.2f ms" % (us / 1000.0)


def mb(kb):
    return "-" if kb is None else "%.1f MB" % (kb / 1024.0)


names = {"postlink": "postlink-pushd (pl-push-client, HTTP, ack on the next request)",
         "imap": "Dovecot IMAP (UID FETCH + UID STORE \\Deleted, EXPUNGE)",
         "pop3": "Dovecot POP3 (RETR + DELE, QUIT)"}
T = []
T.append("# bench/run push: %s" % J["date"])
T.append("")
T.append("One run on 127.0.0.1, %d cores (%s), load average %s before and %s after; "
         "other processes busy on the machine (running, or a compiler) when the measured "
         "phases started and ended: at most %d%s; servers of other postlink test harnesses "
         "present: %d. The same %d messages "
         "(%.1f MB, 2-20 kB, the bench/msg.sh shape) went through the private Postfix to a push "
         "user and to two Dovecot 2.3 mailboxes (not measured), once for each of %d rounds; each "
         "round one client of each kind drained its mailbox, in an order rotated per round; "
         "wall time and time in requests are medians (wall time with its range), latencies are "
         "pooled over the rounds. Each client stores and fsyncs "
         "every message before it acknowledges or deletes it; requests are the requests or "
         "commands sent (logins included); the latency is one message's fetch and ack round "
         "trips (postlink: one request)."
         % (J["cores"], J["cpu"], J["loadavg_before"], J["loadavg_after"],
            J["other_processes_busy"], " (it ran alone)" if J["other_processes_busy"] == 0 else
            " (it did not run alone: %s)" % R.get("other_processes_seen", ""), J["other_harness_processes"], n, J["fill_mb"], rounds))
T.append("")
T.append("| client | requests for %d | per message | wall time (range) | msg/s | time in requests | fetch+ack p50 | p99 | left on server |" % n)
T.append("|---|---|---|---|---|---|---|---|---|")
for t in ("postlink", "imap", "pop3"):
    x = J["drain"][t]
    T.append("| %s | %d | %.3f | %.2f s (%.2f-%.2f) | %s | %.2f s | %s | %s | %d |" % (
        names[t], x["requests"], x["requests_per_message"] or 0, x["seconds"], x["seconds_min"],
        x["seconds_max"], x["msgs_per_s"], x["in_requests_s"], ms(x["p50_us"]), ms(x["p99_us"]),
        max(y["left_on_server"] for y in x["rounds"])))
T.append("")
for p, nm in (("imap", "IMAP"), ("pop3", "POP3")):
    r = J["ratios"][p]
    T.append("%s against postlink: %sx the requests, %sx the wall time, %sx the time in requests, "
             "%sx the p50, %sx the p99." % (nm, r["requests"], r["seconds"], r["in_requests"],
                                            r["p50"], r["p99"]))
T.append("")
T.append("postlink: %d requests for %d messages (target N+1 = %d): %s. Time in requests: the sum "
         "of the requests' or commands' round trips (the connect included); the rest of the wall "
         "time is the client storing: each client writes, fsyncs and renames every message "
         "file; pl-push-client also fsyncs the id it still has to acknowledge (DIR/.pending), "
         "the piggy-backed ack's own cost on the device."
         % (P["requests"], n, n + 1, "met" if all(x["requests"] == n + 1 for x in P["rounds"])
            else "NOT met in every round"))
T.append("")
T.append("## %d devices at once" % devices)
T.append("")
T.append("bench/pl-push-load: %d push users with one device each and %d messages each (filled "
         "before each of %d rounds), a thread and a keep-alive connection per device, all "
         "released together; latencies per request." % (devices, per_dev, rounds))
T.append("")
T.append("| round | messages | requests | wall time | msg/s | request p50 | p99 | max | 503/429 | 409 (ack refused) | offered again | errors | left on server |")
T.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for r, ld in enumerate(loads, 1):
    T.append("| %d | %d of %d | %d | %.2f s | %.1f | %s | %s | %s | %d | %d | %d | %d | %d |" % (
        r, ld["messages"], ld["expected"], ld["requests"], ld["seconds"], ld["msgs_per_s"],
        ms(ld["p50_us"]), ms(ld["p99_us"]), ms(ld["max_us"]), ld["busy"], ld["refused"],
        ld["redelivered"], ld["errors"], ld["left_on_server"]))
lm, lt = J["load"]["median"], J["load"]["total"]
T.append("| median | | | %.2f s | %.1f | %s | %s | %s | | | | | |" % (
    lm["seconds"], lm["msgs_per_s"], ms(lm["p50_us"]), ms(lm["p99_us"]), ms(lm["max_us"])))
pdx = J["pushd"]
if lt["refused"] or pdx["sendings_not_recorded"]:
    why = next((x["refused_error"] for x in loads if x["refused_error"]), "")
    T.append("")
    T.append("postlink-pushd under this load: %d time(s) it could not record a sending and its "
             "ack after the response went out (\"cannot record what was sent ... the device will "
             "be offered it again\": the store transaction, Berkeley DB, failed its 10 attempts); "
             "each time the device's next ack was refused with 409 %s, it started again from "
             "get=first and was offered the unrecorded message(s) again (%d redelivered in all, "
             "recognised by Postlink-Id). %s"
             % (pdx["sendings_not_recorded"], why, lt["redelivered"],
                "Nothing was lost." if all(x["messages"] == x["expected"] and x["left_on_server"] == 0
                                           for x in loads) else "MESSAGES WERE LOST (see Checks)."))
T.append("")
T.append("## postlink-pushd's memory")
T.append("")
rk = J["rss_kb"]
T.append("| idle after start | after the fill | peak under the %d-device load (VmHWM, highest round) | highest sample (20 ms) | after the load |" % devices)
T.append("|---|---|---|---|---|")
T.append("| %s | %s | %s | %s | %s |" % (mb(rk["idle"]), mb(rk["after_fill"]),
                                        mb(rk["peak_under_load"]), mb(rk["max_sampled_under_load"]),
                                        mb(rk["after_load"])))
T.append("")
T.append("postlink-pushd: %s at the end, %d messages stored, %d warning/error lines in its log: "
         "%d LMTP deliveries answered 451 \"push store busy\" (the store transaction failed its "
         "10 attempts; Postfix delivered them again later): %d while Postfix delivered the "
         "one-device mailboxes' %d messages, %s in the fills before the load rounds (%d "
         "recipients each); %d times all LMTP connection slots busy; %d sendings not recorded."
         % ("running" if pdx["alive_at_end"] else "NOT running", pdx["stored"],
            pdx["log_problem_lines"], pdx["lmtp_451"], pdx["lmtp_451_one_device_fill"],
            rounds * n, ", ".join(str(x) for x in pdx["lmtp_451_load_fills"]), devices,
            pdx["lmtp_slots_busy"], pdx["sendings_not_recorded"]))
T.append("")
T.append("Checks: " + ("every message drained once by every client, nothing left on the servers"
                       if not problems else "PROBLEMS: " + "; ".join(problems)))
with open(os.path.join(out, "latest-push.md"), "w") as fh:
    fh.write("\n".join(T) + "\n")
print("\n".join(T))
sys.exit(1 if problems else 0)
