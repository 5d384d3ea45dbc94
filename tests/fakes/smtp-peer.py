#!/usr/bin/env python3
"""smtp-peer.py -- a callee's SMTP end that misbehaves on demand, for
postlink-sipd's fallback tests: it listens on 127.0.0.1:PORT, expects the
SIP token line "POSTLINK <token>" first (the caller is the active side),
then plays an SMTP server.  Each connection takes the next mode of MODES
(the last one repeats):
  ok            accept everything; store the message in DIR
  drop-in-data  close the connection after 10 bytes of the message
  hang-in-data  stop reading after 10 bytes of the message (never close)
  drop-after-dot  read the whole message and its final dot, then close
                  without a reply
  bad-token     (checks) log what came and close
Every event is logged to stdout, one line each: "conn N", "token ok|bad",
"mode M", "stored FILE", "dropped", "closed".
usage: smtp-peer.py PORT TOKEN DIR MODES"""
import os
import socket
import sys
import time

port, token, outdir, modes = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4].split(",")


def log(s):
    print(s, flush=True)


def serve(c, n, mode):
    f = c.makefile("rb")
    first = f.readline(200)
    if first.rstrip(b"\r\n") != b"POSTLINK " + token.encode():
        log("token bad %r" % first[:80])
        return
    log("token ok")
    c.sendall(b"220 peer.test ESMTP fake\r\n")
    while True:
        line = f.readline(2048)
        if not line:
            log("closed")
            return
        cmd = line[:4].upper()
        if cmd in (b"EHLO", b"HELO"):
            c.sendall(b"250-peer.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 DSN\r\n")
        elif cmd in (b"MAIL", b"RCPT", b"RSET", b"NOOP"):
            c.sendall(b"250 2.0.0 ok\r\n")
        elif cmd == b"QUIT":
            c.sendall(b"221 2.0.0 bye\r\n")
            log("closed")
            return
        elif cmd == b"DATA":
            c.sendall(b"354 go\r\n")
            if mode in ("drop-in-data", "hang-in-data"):
                f.read(10)
                if mode == "hang-in-data":
                    log("hanging")
                    time.sleep(3600)
                log("dropped in data")
                return
            data = b""
            while True:
                l = f.readline(65536)
                if not l:
                    log("closed in data")
                    return
                if l == b".\r\n":
                    break
                data += l
            if mode == "drop-after-dot":
                log("dropped after dot")
                return
            name = os.path.join(outdir, "msg.%d.%d" % (os.getpid(), n))
            with open(name, "wb") as out:
                out.write(data)
            c.sendall(b"250 2.0.0 stored\r\n")
            log("stored " + name)
        else:
            c.sendall(b"502 5.5.2 what\r\n")


s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
# a small window: a sender cannot park a big message in our buffers
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.bind(("127.0.0.1", port))
s.listen(8)
log("listening %d" % port)
n = 0
while True:
    c, _ = s.accept()
    mode = modes[min(n, len(modes) - 1)]
    n += 1
    log("conn %d mode %s" % (n, mode))
    try:
        serve(c, n, mode)
    except OSError as e:
        log("error %s" % e)
    c.close()
