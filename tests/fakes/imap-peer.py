#!/usr/bin/env python3
"""imap-peer.py -- a primary IMAP server that misbehaves on demand, for
postlink-mirrord's IMAP fault cases (tests/integration/t_mirror_imap.sh).
Dovecot never breaks off in the middle of a literal or lies about a size;
this one does, when told to.

usage: imap-peer.py PORT DIR [--script FILE]

It listens on 127.0.0.1:PORT and serves DIR as INBOX: each file whose
name is a number N is the message with UID N (LF line ends sent as CRLF;
RFC822.SIZE counts them so).  Any login is taken.  DIR and the script (a
JSON object) are read again at each connection, so a test changes the
mailbox or the faults between two sessions.  Script keys:
  uidvalidity  N        (default 1000)
  drop_in      "UID:B"  close the connection after B bytes of that UID's body
  size_lie     UID      RFC822.SIZE of that UID one more than its bytes

Every event goes to stdout, one line each: "conn N", "cmd N: COMMAND"
(AUTHENTICATE/LOGIN arguments shown as "***"), "dropped N: in UID U after
B bytes", "VIOLATION N: COMMAND" for anything that could change a
mailbox or set \\Seen (SELECT, STORE, EXPUNGE, COPY, MOVE, APPEND,
BODY[] or RFC822 without PEEK), "closed N"."""
import json
import os
import re
import socketserver
import sys
import threading

PORT, DIR = int(sys.argv[1]), sys.argv[2]
SCRIPT = sys.argv[4] if len(sys.argv) > 4 and sys.argv[3] == "--script" else None
lock = threading.Lock()
nconn = [0]


def say(s):
    with lock:
        print(s, flush=True)


def mailbox():
    msgs = []
    for name in os.listdir(DIR):
        if name.isdigit():
            with open(os.path.join(DIR, name), "rb") as f:
                msgs.append((int(name), f.read().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")))
    return sorted(msgs)


def uid_set(spec, msgs):
    top = msgs[-1][0] if msgs else 0
    want = set()
    for part in spec.split(","):
        a, _, b = part.partition(":")
        lo = top if a == "*" else int(a)
        hi = lo if not b else (top if b == "*" else int(b))
        want.update(range(min(lo, hi), max(lo, hi) + 1))
    return want


class Session(socketserver.StreamRequestHandler):
    def handle(self):
        with lock:
            nconn[0] += 1
            n = nconn[0]
        script = {}
        if SCRIPT and os.path.exists(SCRIPT):
            with open(SCRIPT) as f:
                script = json.load(f)
        msgs = mailbox()
        say("conn %d" % n)
        w = self.wfile
        w.write(b"* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN] imap-peer ready\r\n")
        while True:
            line = self.rfile.readline()
            if not line:
                break
            text = line.decode("latin-1").rstrip("\r\n")
            tag, _, rest = text.partition(" ")
            cmd = rest.upper()
            shown = re.sub(r"^((?:AUTHENTICATE PLAIN|LOGIN) ).*", r"\1***", rest, flags=re.I)
            say("cmd %d: %s" % (n, shown))
            if re.match(r"(SELECT|STORE|EXPUNGE|COPY|MOVE|APPEND|UID (STORE|EXPUNGE|COPY|MOVE))\b", cmd) \
                    or re.search(r"BODY\[|RFC822(\)| |$)|RFC822\.TEXT|RFC822\.HEADER", cmd):
                say("VIOLATION %d: %s" % (n, rest))
            if cmd == "CAPABILITY":
                w.write(b"* CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN\r\n%s OK done\r\n" % tag.encode())
            elif cmd.startswith("AUTHENTICATE PLAIN"):
                if cmd == "AUTHENTICATE PLAIN":
                    w.write(b"+ \r\n")
                    w.flush()
                    self.rfile.readline()
                w.write(b"%s OK Logged in\r\n" % tag.encode())
            elif cmd.startswith("LOGIN "):
                w.write(b"%s OK Logged in\r\n" % tag.encode())
            elif cmd.startswith("EXAMINE "):
                w.write(b"* %d EXISTS\r\n* OK [UIDVALIDITY %d] UIDs valid\r\n%s OK [READ-ONLY] done\r\n"
                        % (len(msgs), int(script.get("uidvalidity", 1000)), tag.encode()))
            elif cmd.startswith("UID FETCH "):
                spec, _, items = rest[10:].partition(" ")
                want = uid_set(spec, msgs)
                drop = script.get("drop_in", "")
                for seq, (uid, data) in enumerate(msgs, 1):
                    if uid not in want:
                        continue
                    if "RFC822.SIZE" in items.upper():
                        size = len(data) + (1 if str(uid) == str(script.get("size_lie")) else 0)
                        w.write(b"* %d FETCH (UID %d RFC822.SIZE %d)\r\n" % (seq, uid, size))
                        continue
                    section = b"HEADER" if "[HEADER]" in items.upper() else b""
                    body = data[:data.find(b"\r\n\r\n") + 4] if section else data
                    w.write(b"* %d FETCH (UID %d BODY[%s] {%d}\r\n" % (seq, uid, section, len(body)))
                    if drop and drop.split(":")[0] == str(uid) and not section:
                        w.write(body[:int(drop.split(":")[1])])
                        w.flush()
                        say("dropped %d: in UID %d after %s bytes" % (n, uid, drop.split(":")[1]))
                        return
                    w.write(body + b")\r\n")
                w.write(b"%s OK Fetch completed\r\n" % tag.encode())
            elif cmd == "LOGOUT":
                w.write(b"* BYE bye\r\n%s OK Logout completed\r\n" % tag.encode())
                w.flush()
                break
            else:
                w.write(b"%s BAD unknown command\r\n" % tag.encode())
            w.flush()
        say("closed %d" % n)


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


Server(("127.0.0.1", PORT), Session).serve_forever()
