#!/usr/bin/env python3
# milter-flood.py SOCKET SECONDS -- plays a misbehaving MTA on a milter
# socket: negotiates, starts a transaction, then sends RCPT commands for
# the reserved sync domain (each answered with a 5xx reply text) for
# SECONDS without ever reading the replies.  Prints the bytes it got the
# milter to accept.  Used by t_milter_flood.sh.
import socket, struct, sys, time

def pkt(cmd, data=b''):
    return struct.pack('>I', len(data) + 1) + cmd + data

path, secs = sys.argv[1], float(sys.argv[2])
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)                               # never wait for good
s.connect(path)
s.sendall(pkt(b'O', struct.pack('>III', 6, 0x1ff, 0x1fffff)))
s.recv(65536)                                  # the negotiation reply
# connect and MAIL: postlink-sync negotiated both "no reply"
s.sendall(pkt(b'C', b'flood.example\x004' + struct.pack('>H', 25) + b'127.0.0.9\x00'))
s.sendall(pkt(b'M', b'<a@elsewhere.example>\x00'))
rcpt = pkt(b'R', b'<x+' + b'y' * 40 + b'@sync.postlink.invalid>\x00') * 512
s.setblocking(False)
sent, pos, end = 0, 0, time.time() + secs
while time.time() < end:                       # one unbroken stream of packets
    try:
        n = s.send(rcpt[pos:])
    except BlockingIOError:
        time.sleep(0.01)
        continue
    sent += n
    pos = (pos + n) % len(rcpt)
print(sent)
