#!/usr/bin/env python3
# push_dovecot.py -- bench/run push's baseline: a device draining a Dovecot
# mailbox the way a mail client does when it must delete what it stored:
#   imap   LOGIN, SELECT, UID SEARCH ALL, then per message UID FETCH
#          BODY.PEEK[] and UID STORE +FLAGS.SILENT (\Deleted), then EXPUNGE
#          and LOGOUT
#   pop3   USER, PASS, UIDL, then per message RETR and DELE, then QUIT
# Each message is written to DIR/<n>.eml and fsync'd before its delete is
# sent (as pl-push-client drain does).  Requests are the commands sent,
# counted inside imaplib/poplib (also those they send by themselves);
# seconds from connect to the end of LOGOUT/QUIT; the latency is per
# message: its fetch's and its delete's round trips (not the write to
# DIR in between, as pl-push-client's us= is one request alone).  Prints
# "requests=R messages=M bytes=B seconds=S p50_us=P p99_us=Q".
# usage: push_dovecot.py imap|pop3 PORT USER PASS DIR
import imaplib, os, poplib, sys, time

proto, port, user, pw, out = sys.argv[1:6]
port = int(port)
sent = [0]


class IMAP(imaplib.IMAP4):
    def _command(self, name, *args):
        sent[0] += 1
        return super()._command(name, *args)


class POP3(poplib.POP3):
    def _putcmd(self, line):
        sent[0] += 1
        return super()._putcmd(line)


def store(n, data):
    fd = os.open(os.path.join(out, "%d.eml" % n), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, data)
    os.fsync(fd)
    os.close(fd)


def us():
    return time.monotonic_ns() // 1000


lat, nbytes, msgs = [], 0, 0
t0 = us()
if proto == "imap":
    c = IMAP("127.0.0.1", port)
    c.login(user, pw)
    c.select("INBOX")
    typ, d = c.uid("SEARCH", "ALL")
    uids = d[0].split()
    for u in uids:
        a = us()
        typ, d = c.uid("FETCH", u, "(BODY.PEEK[])")
        b = us()
        body = next(x[1] for x in d if isinstance(x, tuple))
        store(msgs + 1, body)
        e = us()
        c.uid("STORE", u, "+FLAGS.SILENT", "(\\Deleted)")
        lat.append(b - a + us() - e)
        nbytes += len(body)
        msgs += 1
    c.expunge()
    c.logout()
else:
    c = POP3("127.0.0.1", port)
    c.user(user)
    c.pass_(pw)
    resp, listing, _ = c.uidl()
    for line in listing:
        num = int(line.split()[0])
        a = us()
        resp, lines, octets = c.retr(num)
        b = us()
        body = b"\r\n".join(lines) + b"\r\n"
        store(msgs + 1, body)
        e = us()
        c.dele(num)
        lat.append(b - a + us() - e)
        nbytes += len(body)
        msgs += 1
    c.quit()
t1 = us()
lat.sort()
pct = lambda p: lat[int((len(lat) - 1) * p)] if lat else 0
print("requests=%d messages=%d bytes=%d seconds=%.3f p50_us=%d p99_us=%d"
      % (sent[0], msgs, nbytes, (t1 - t0) / 1e6, pct(0.5), pct(0.99)))
