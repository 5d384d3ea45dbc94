#!/usr/bin/env python3
# push_dovecot.py -- bench/run push's baseline: a device draining a Dovecot
# mailbox the way a mail client does when it must delete what it stored:
#   imap   LOGIN, SELECT, UID SEARCH ALL, then per message UID FETCH
#          BODY.PEEK[] and UID STORE +FLAGS.SILENT (\Deleted), then EXPUNGE
#          and LOGOUT
#   pop3   USER, PASS, UIDL, then per message RETR and DELE, then QUIT
# Each message is stored as pl-push-client drain stores it (DIR/<n>.eml.tmp
# written, fsync'd, renamed to DIR/<n>.eml) before its delete is sent.
# Requests are the commands sent, counted inside imaplib/poplib (also those
# they send by themselves); seconds from connect to the end of
# LOGOUT/QUIT; in_requests_s the time spent in commands (connect
# included), i.e. without the storing; the latency is per message, its
# fetch's and its delete's round trips (not the storing between them, as
# pl-push-client's us= is one request alone).  Prints "requests=R
# messages=M bytes=B seconds=S in_requests_s=T p50_us=P p99_us=Q"; with
# LATFILE, each message's latency (us) there, one a line.
# usage: push_dovecot.py imap|pop3 PORT USER PASS DIR [LATFILE]
import imaplib, os, poplib, sys, time

proto, port, user, pw, out = sys.argv[1:6]
latfile = sys.argv[6] if len(sys.argv) > 6 else None
port = int(port)
sent = [0]
spent = [0]


class IMAP(imaplib.IMAP4):
    def _command(self, name, *args):
        sent[0] += 1
        return super()._command(name, *args)


class POP3(poplib.POP3):
    def _putcmd(self, line):
        sent[0] += 1
        return super()._putcmd(line)


def us():
    return time.monotonic_ns() // 1000


def rt(f, *args):
    """one command (or the connect): its result; its time into spent"""
    a = us()
    r = f(*args)
    spent[0] += us() - a
    return r, us() - a


def store(n, data):
    path = os.path.join(out, "%d.eml" % n)
    fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, data)
    os.fsync(fd)
    os.close(fd)
    os.rename(path + ".tmp", path)


lat, nbytes, msgs = [], 0, 0
t0 = us()
if proto == "imap":
    c, _ = rt(IMAP, "127.0.0.1", port)
    rt(c.login, user, pw)
    rt(c.select, "INBOX")
    (typ, d), _ = rt(c.uid, "SEARCH", "ALL")
    for u in d[0].split():
        (typ, d), a = rt(c.uid, "FETCH", u, "(BODY.PEEK[])")
        body = next(x[1] for x in d if isinstance(x, tuple))
        store(msgs + 1, body)
        _, b = rt(c.uid, "STORE", u, "+FLAGS.SILENT", "(\\Deleted)")
        lat.append(a + b)
        nbytes += len(body)
        msgs += 1
    rt(c.expunge)
    rt(c.logout)
else:
    c, _ = rt(POP3, "127.0.0.1", port)
    rt(c.user, user)
    rt(c.pass_, pw)
    (resp, listing, _), _ = rt(c.uidl)
    for line in listing:
        num = int(line.split()[0])
        (resp, lines, octets), a = rt(c.retr, num)
        body = b"\r\n".join(lines) + b"\r\n"
        store(msgs + 1, body)
        _, b = rt(c.dele, num)
        lat.append(a + b)
        nbytes += len(body)
        msgs += 1
    rt(c.quit)
t1 = us()
if latfile:
    with open(latfile, "w") as fh:
        fh.write("".join("%d\n" % x for x in lat))
lat.sort()
pct = lambda p: lat[int((len(lat) - 1) * p)] if lat else 0
print("requests=%d messages=%d bytes=%d seconds=%.3f in_requests_s=%.3f p50_us=%d p99_us=%d"
      % (sent[0], msgs, nbytes, (t1 - t0) / 1e6, spent[0] / 1e6, pct(0.5), pct(0.99)))
