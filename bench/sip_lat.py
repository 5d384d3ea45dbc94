#!/usr/bin/env python3
"""sip_lat.py -- the latency part of bench/run sip: N messages per path, one
at a time, the paths alternating (which goes first changes every message):
each is submitted with SASL on site A's submission port, then site B's
maildir new/ of its recipient is polled every 0.5 ms until the message is
there.  Latency: from just before the connect to the file in new/ (Postfix's
virtual(8) renames it there when it is complete).  Prints one line per
message: ROUND PATH I LATENCY_MS SUBMIT_MS; exits 1 if one did not arrive
within 30 s.
usage: sip_lat.py PORT USER PASS N ROUND NAME:RCPT:NEWDIR:FILE..."""
import os
import smtplib
import sys
import time


def main():
    port, user, pw, n, rnd = sys.argv[1:6]
    paths = [a.split(":", 3) for a in sys.argv[6:]]
    bodies = {p[0]: open(p[3], "rb").read() for p in paths}
    bad = 0
    for i in range(int(n)):
        order = paths if i % 2 == 0 else paths[::-1]
        for name, rcpt, newdir, _ in order:
            before = set(os.listdir(newdir))
            msg = bodies[name].replace(b"@@ID@@", ("lat-%s-%s-%d-%d" % (rnd, name, i, os.getpid())).encode())
            t0 = time.monotonic()
            s = smtplib.SMTP("127.0.0.1", int(port), timeout=30)
            s.login(user, pw)
            s.sendmail(user, [rcpt], msg)
            t_sub = time.monotonic()
            s.quit()
            end = t0 + 30
            while True:
                new = set(os.listdir(newdir)) - before
                if new:
                    t1 = time.monotonic()
                    break
                if time.monotonic() > end:
                    t1 = None
                    break
                time.sleep(0.0005)
            if t1 is None:
                print("sip_lat: %s message %d did not arrive within 30 s" % (name, i), file=sys.stderr)
                bad += 1
                continue
            print("%s\t%s\t%d\t%.2f\t%.2f" % (rnd, name, i, (t1 - t0) * 1000, (t_sub - t0) * 1000), flush=True)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
