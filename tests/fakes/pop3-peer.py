#!/usr/bin/env python3
"""pop3-peer.py -- a primary POP3 server that misbehaves on demand, for
postlink-mirrord's fault tests (tests/integration/t_mirror_faults.sh).
Dovecot never sends bad protocol; this one does, when told to.

usage: pop3-peer.py PORT DIR [--script FILE] [OPTIONS]

It listens on 127.0.0.1:PORT and serves the mailbox DIR: one message per
file, in the order of the file names; a file's name is its UIDL.  LF line
ends are sent as CRLF (LIST counts them so).  A file NAME.gen holding a
number SIZE is a message made on the fly (SIZE octets as LIST counts
them, Message-ID <gen-NAME@fake.test>, UIDL NAME): no big files on disk.
DIR is read again at each connection, and so is the script: a JSON object
whose keys are the options below (without "--", "-" as "_"); they replace
the command line's for that connection.  A test changes the mailbox or
the faults between two sessions by rewriting them.

  --user U --password P   the only login taken (default: any)
  --pipelining            announce PIPELINING
  --sasl-plain            announce SASL PLAIN (AUTH PLAIN), else USER/PASS
  --expire DAYS           announce EXPIRE DAYS (a number or NEVER)
  --login-err TEXT        answer the login with "-ERR TEXT", e.g.
                          "[IN-USE] mailbox locked" or "[AUTH] bad password"
  --drop-in N:BYTES       after BYTES bytes of message N's body (TOP/RETR),
                          close the connection
  --short-top N           TOP/RETR of message N leaves out its last line
                          (fewer bytes than LIST says)
  --uidl-bad N:KIND       message N's UIDL line is malformed: ctl (a control
                          character in the id), long (71 characters) or
                          missing (no id); repeatable
  --uidl-dup N:M          message N is listed with message M's UIDL; repeatable
  --hang-uidl K           send K lines of the UIDL listing, then nothing
                          (until the client closes)

Every event goes to stdout, one line each: "conn N", "cmd N: COMMAND
(outstanding K)" (PASS and AUTH data shown as "***"; K: the commands
received and not answered yet, this one included), "login ok|refused",
"dropped N: in message M after B bytes", "hang N: in UIDL after K lines",
"closed N", "max-outstanding N: K" at the end of each session."""
import argparse
import base64
import json
import os
import select
import socket
import socketserver
import sys
import threading

ap = argparse.ArgumentParser(description="a scripted POP3 primary")
ap.add_argument("port", type=int)
ap.add_argument("dir")
ap.add_argument("--script")
ap.add_argument("--user")
ap.add_argument("--password")
ap.add_argument("--pipelining", action="store_true")
ap.add_argument("--sasl-plain", action="store_true")
ap.add_argument("--expire")
ap.add_argument("--login-err")
ap.add_argument("--drop-in")
ap.add_argument("--short-top", type=int)
ap.add_argument("--uidl-bad", action="append", default=[])
ap.add_argument("--uidl-dup", action="append", default=[])
ap.add_argument("--hang-uidl", type=int)
ARGS = vars(ap.parse_args())

LOCK = threading.Lock()
CONNS = [0]
GEN = {}                                  # (name, size) -> bytes


def log(s):
    with LOCK:
        print(s, flush=True)


def settings():
    """The command line's options, the script's over them."""
    o = dict(ARGS)
    if o["script"] and os.path.exists(o["script"]):
        with open(o["script"]) as f:
            for k, v in json.load(f).items():
                k = k.replace("-", "_")
                if k not in o or k in ("port", "dir", "script"):
                    raise SystemExit("pop3-peer: unknown script key %r" % k)
                o[k] = v
    for k in ("uidl_bad", "uidl_dup"):
        if isinstance(o[k], str):
            o[k] = [o[k]]
    return o


def generated(name, size):
    key = (name, size)
    if key not in GEN:
        head = ("From: <gen@fake.test>\r\nTo: <mirror@fake.test>\r\n"
                "Subject: generated %s (%d octets)\r\nMessage-ID: <gen-%s@fake.test>\r\n"
                "Date: Thu, 01 Jan 2026 00:00:00 +0000\r\n\r\n" % (name, size, name)).encode()
        left = size - len(head)
        line = b"0123456789abcdefghijklmnopqrstuvwxyz" * 2 + b"ABCD\r\n"     # 78 octets
        n, rest = divmod(left, len(line))
        tail = b""
        if rest:                           # a shorter last line: >= 2 octets (CRLF)
            if rest < 2:
                n, rest = n - 1, rest + len(line)
            tail = b"z" * (rest - 2) + b"\r\n"
        GEN[key] = head + line * n + tail
        assert len(GEN[key]) == size
    return GEN[key]


def mailbox(d):
    """[(uidl, wire bytes)] in file name order."""
    out = []
    for name in sorted(os.listdir(d)):
        p = os.path.join(d, name)
        if not os.path.isfile(p):
            continue
        if name.endswith(".gen"):
            with open(p) as f:
                size = int(f.read().strip())
            out.append((name[:-4], generated(name[:-4], size)))
            continue
        with open(p, "rb") as f:
            b = f.read().replace(b"\r\n", b"\n")
        if not b.endswith(b"\n"):
            b += b"\n"
        out.append((name, b.replace(b"\n", b"\r\n")))
    return out


def stuffed(msg):
    """The message as a multi-line body (dot-stuffed), without the final dot."""
    if b"\n." not in msg and not msg.startswith(b"."):
        return msg
    lines = msg.split(b"\r\n")
    return b"\r\n".join(b"." + l if l.startswith(b".") else l for l in lines)


class Session(socketserver.BaseRequestHandler):
    def setup(self):
        with LOCK:
            CONNS[0] += 1
            self.n = CONNS[0]
        self.buf = b""
        self.maxout = 0
        self.first_fetch = True

    def send(self, b):
        self.request.sendall(b)

    def line(self):
        while b"\n" not in self.buf:
            d = self.request.recv(65536)
            if not d:
                return None
            self.buf += d
        l, self.buf = self.buf.split(b"\n", 1)
        return l.rstrip(b"\r").decode("latin-1")

    def outstanding(self):
        return 1 + self.buf.count(b"\n")

    def capa(self, o):
        caps = ["TOP", "UIDL", "USER", "RESP-CODES", "AUTH-RESP-CODE"]
        if o["pipelining"]:
            caps.append("PIPELINING")
        if o["sasl_plain"]:
            caps.append("SASL PLAIN")
        if o["expire"] is not None:
            caps.append("EXPIRE %s" % o["expire"])
        caps.append("IMPLEMENTATION pop3-peer.py")
        self.send(b"+OK capabilities\r\n" + "".join(c + "\r\n" for c in caps).encode() + b".\r\n")

    def uidl_line(self, o, i, msgs):
        n = str(i + 1)
        uid = msgs[i][0]
        for d in o["uidl_dup"]:
            a, b = d.split(":")
            if a == n:
                uid = msgs[int(b) - 1][0]
        for d in o["uidl_bad"]:
            a, kind = d.split(":")
            if a == n:
                uid = {"ctl": uid[:3] + "\x01" + uid[3:], "long": "L" * 71, "missing": ""}[kind]
        return "%d %s" % (i + 1, uid) if uid else "%d" % (i + 1)

    def login(self, o, user, pw):
        if o["login_err"]:
            log("login refused %d: %s" % (self.n, o["login_err"]))
            self.send(b"-ERR " + o["login_err"].encode() + b"\r\n")
            return False
        if (o["user"] and user != o["user"]) or (o["password"] and pw != o["password"]):
            log("login refused %d: wrong user or password" % self.n)
            self.send(b"-ERR [AUTH] wrong user or password\r\n")
            return False
        log("login ok %d" % self.n)
        self.send(b"+OK logged in\r\n")
        return True

    def fetch(self, o, msgs, words):
        try:
            k = int(words[1])
            if k < 1:
                raise IndexError
            msg = msgs[k - 1][1]
        except (IndexError, ValueError):
            self.send(b"-ERR no such message\r\n")
            return True
        if o["short_top"] == k:
            msg = msg[:msg.rstrip(b"\r\n").rfind(b"\r\n") + 2]
        body = stuffed(msg)
        if o["drop_in"]:
            m, nb = map(int, o["drop_in"].split(":"))
            if m == k:
                self.send(b"+OK\r\n" + body[:nb])
                log("dropped %d: in message %d after %d bytes" % (self.n, k, nb))
                return False
        self.send(b"+OK %d octets\r\n" % len(msg))
        for off in range(0, len(body), 1 << 20):
            self.send(body[off:off + (1 << 20)])
        self.send(b".\r\n")
        return True

    def handle(self):
        o = settings()
        msgs = mailbox(o["dir"])
        log("conn %d: %d messages" % (self.n, len(msgs)))
        self.send(b"+OK pop3-peer ready\r\n")
        try:
            self.session(o, msgs)
        except (BrokenPipeError, ConnectionResetError):
            log("reset %d" % self.n)
        log("max-outstanding %d: %d" % (self.n, self.maxout))
        log("closed %d" % self.n)

    def session(self, o, msgs):
        authed, user = False, None
        while True:
            l = self.line()
            if l is None:
                return
            words = l.split()
            if not words:
                self.send(b"-ERR empty command\r\n")
                continue
            cmd = words[0].upper()
            shown = cmd + " ***" if cmd in ("PASS", "AUTH") else l
            out = self.outstanding()
            if cmd in ("TOP", "RETR") and o["pipelining"] and out == 1 and self.first_fetch:
                # give a pipelining client the moment to send the rest
                if select.select([self.request], [], [], 0.2)[0]:
                    d = self.request.recv(65536)
                    self.buf += d
                    out = self.outstanding()
            if cmd in ("TOP", "RETR"):
                self.first_fetch = False
            self.maxout = max(self.maxout, out)
            log("cmd %d: %s (outstanding %d)" % (self.n, shown, out))
            if cmd == "CAPA":
                self.capa(o)
            elif cmd == "QUIT":
                self.send(b"+OK bye\r\n")
                return
            elif cmd == "NOOP":
                self.send(b"+OK\r\n")
            elif not authed:
                if cmd == "USER" and len(words) == 2:
                    user = words[1]
                    self.send(b"+OK\r\n")
                elif cmd == "PASS" and user is not None:
                    authed = self.login(o, user, l[5:])
                elif cmd == "AUTH" and len(words) == 3 and words[1].upper() == "PLAIN":
                    try:
                        _, u, p = base64.b64decode(words[2]).decode().split("\0")
                    except ValueError:
                        self.send(b"-ERR bad AUTH PLAIN\r\n")
                        continue
                    authed = self.login(o, u, p)
                else:
                    self.send(b"-ERR log in first\r\n")
            elif cmd == "STAT":
                self.send(b"+OK %d %d\r\n" % (len(msgs), sum(len(m) for _, m in msgs)))
            elif cmd in ("UIDL", "LIST") and len(words) == 1:
                self.send(b"+OK\r\n")
                for i in range(len(msgs)):
                    if cmd == "UIDL" and o["hang_uidl"] is not None and i == o["hang_uidl"]:
                        log("hang %d: in UIDL after %d lines" % (self.n, i))
                        while self.request.recv(65536):
                            pass
                        return
                    t = self.uidl_line(o, i, msgs) if cmd == "UIDL" else \
                        "%d %d" % (i + 1, len(msgs[i][1]))
                    self.send(t.encode("latin-1") + b"\r\n")
                self.send(b".\r\n")
            elif cmd in ("UIDL", "LIST") and len(words) == 2:
                # one message (RFC 1939): "+OK n id" / "+OK n size"
                try:
                    k = int(words[1])
                except ValueError:
                    k = 0
                if not 1 <= k <= len(msgs):
                    self.send(b"-ERR no such message\r\n")
                    continue
                t = self.uidl_line(o, k - 1, msgs) if cmd == "UIDL" else \
                    "%d %d" % (k, len(msgs[k - 1][1]))
                self.send(b"+OK " + t.encode("latin-1") + b"\r\n")
            elif cmd in ("TOP", "RETR"):
                if not self.fetch(o, msgs, words):
                    return
            elif cmd == "RSET":
                self.send(b"+OK\r\n")
            else:
                # DELE too: this primary is never changed (and says so in its log)
                self.send(b"-ERR not here\r\n")


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


settings()                                 # a bad script fails now, not later
srv = Server(("127.0.0.1", ARGS["port"]), Session)
log("listening on 127.0.0.1:%d" % ARGS["port"])
try:
    srv.serve_forever()
except KeyboardInterrupt:
    sys.exit(0)
