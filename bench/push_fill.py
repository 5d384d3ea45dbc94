#!/usr/bin/env python3
# push_fill.py -- bench/run push's fill (not measured): N messages of the
# bench/msg.sh shape (a list mail, CRLF), sizes spread evenly over
# MIN..MAX bytes (the same sizes for the same SEED), each sent once to all
# RCPTS in one SMTP session to the harness Postfix, so every recipient
# (the push user and the Dovecot users) gets the same messages.  Prints
# "messages=N bytes=B" (B: the sum of the message sizes).
# usage: push_fill.py PORT TEMPLATE N MIN MAX SEED FROM RCPT[,RCPT...]
import random, smtplib, sys

port, tmpl, n, lo, hi, seed, sender, rcpts = sys.argv[1:9]
n, lo, hi = int(n), int(lo), int(hi)
rcpts = rcpts.split(",")
raw = open(tmpl, "rb").read()
head, body = raw.split(b"\r\n\r\n", 1)
lines = body.split(b"\r\n")
rnd = random.Random(seed)
total = 0
s = smtplib.SMTP("127.0.0.1", int(port), timeout=60)
s.ehlo("bench.remote.test")
for i in range(1, n + 1):
    want = rnd.randint(lo, hi)
    h = head.replace(b"@@ID@@", b"push-%s-%d" % (seed.encode(), i)) + \
        b"\r\nX-Bench-Seq: %d\r\n\r\n" % i
    parts, have, k = [h], len(h), 0
    while have < want:
        line = lines[k % len(lines)] or b"the release candidate"
        parts.append(line + b"\r\n")
        have += len(line) + 2
        k += 1
    msg = b"".join(parts)
    refused = s.sendmail(sender, rcpts, msg)
    if refused:
        sys.exit("push_fill: refused %s" % refused)
    total += len(msg)
s.quit()
print("messages=%d bytes=%d" % (n, total))
