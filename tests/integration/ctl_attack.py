#!/usr/bin/env python3
"""Hostile local clients of pulld's control socket, for test_ctl_limits.sh.

  ctl_attack.py idle SOCK N SECONDS        open N connections that send nothing, hold them
                                           SECONDS, print how many pulld closed ("closed K")
  ctl_attack.py watchers SOCK N SECONDS    open N watches that never read their events, hold
                                           them SECONDS; prints "open K" (still open at the end)
  ctl_attack.py hog SOCK N SECONDS         N clients that each keep 4 searches (limit 1000)
                                           in flight, reading the replies; prints "replies K"
  ctl_attack.py lagger SOCK PAUSE SECONDS  one watch that reads nothing for PAUSE seconds,
                                           then reads for SECONDS; prints "lagged N" (the
                                           events pulld said it left out) or "lagged none"
  ctl_attack.py rss PID                    print pulld's "VmRSS VmHWM" in kB

The frames are built by hand (u32 big-endian length, one MessagePack map): the script needs
nothing beyond python3.
"""
import os
import socket
import sys
import time


def frame(cmd, seq, args=b"\x80"):
    def s(x):
        b = x.encode()
        return bytes([0xA0 | len(b)]) + b

    if seq < 128:
        seqb = bytes([seq])
    elif seq < 256:
        seqb = b"\xcc" + bytes([seq])
    elif seq < 65536:
        seqb = b"\xcd" + seq.to_bytes(2, "big")
    else:
        seqb = b"\xce" + seq.to_bytes(4, "big")
    body = bytes([0x83]) + s("cmd") + s(cmd) + s("seq") + seqb + s("args") + args
    return len(body).to_bytes(4, "big") + body


def lagger(path, pause, secs):
    c = connect(path, 4096)
    c.sendall(frame("watch", 1))
    time.sleep(pause)
    c.settimeout(0.2)
    data = b""
    end = time.time() + secs
    while time.time() < end:
        try:
            d = c.recv(1 << 20)
        except socket.timeout:
            continue
        if not d:
            break
        data += d
    at = data.find(b"\xa6lagged\xa7dropped")
    if at < 0:
        print("lagged none")
        return
    v = data[at + 15:at + 24]
    if v[0] < 0x80:
        n = v[0]
    else:
        size = {0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8}[v[0]]
        n = int.from_bytes(v[1:1 + size], "big")
    print("lagged %d" % n)


def hog(path, n, secs):
    import selectors

    sel = selectors.DefaultSelector()
    args = b"\x81\xa5limit\xcd\x03\xe8"
    state = {}
    for i in range(n):
        c = connect(path)
        for k in range(4):
            c.sendall(frame("search", 1 + k, args))
        c.setblocking(False)
        state[c] = [b"", 5]
        sel.register(c, selectors.EVENT_READ)
    replies = 0
    end = time.time() + secs
    while time.time() < end:
        for key, _ in sel.select(0.1):
            c = key.fileobj
            st = state[c]
            try:
                d = c.recv(1 << 20)
            except BlockingIOError:
                continue
            if not d:
                sel.unregister(c)
                continue
            st[0] += d
            while len(st[0]) >= 4 and len(st[0]) >= 4 + int.from_bytes(st[0][:4], "big"):
                st[0] = st[0][4 + int.from_bytes(st[0][:4], "big"):]
                replies += 1
                c.setblocking(True)
                c.sendall(frame("search", st[1], args))
                c.setblocking(False)
                st[1] = st[1] + 1 if st[1] < 1000000 else 1
    print("replies %d" % replies)


def connect(path, rcvbuf=None):
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    if rcvbuf:
        c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    c.connect(path)
    return c


def closed_by_peer(c):
    c.setblocking(False)
    try:
        while True:
            d = c.recv(65536)
            if d == b"":
                return True
    except BlockingIOError:
        return False
    except OSError:
        return True


def main():
    what = sys.argv[1]
    if what == "rss":
        vals = {}
        with open("/proc/%s/status" % sys.argv[2]) as f:
            for line in f:
                k, _, v = line.partition(":")
                vals[k] = v.split()[0] if v.split() else "0"
        print(vals.get("VmRSS", "0"), vals.get("VmHWM", "0"))
        return
    path, n, secs = sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    if what == "hog":
        hog(path, n, secs)
        return
    if what == "lagger":
        lagger(path, float(sys.argv[3]), secs)
        return
    conns = []
    for _ in range(n):
        try:
            c = connect(path, 4096 if what == "watchers" else None)
        except OSError:
            continue
        if what == "watchers":
            c.sendall(frame("watch", 1))
        conns.append(c)
    print("connected %d" % len(conns), flush=True)
    end = time.time() + secs
    while time.time() < end:
        time.sleep(0.1)
    if what == "idle":
        print("closed %d" % sum(1 for c in conns if closed_by_peer(c)))
    else:
        print("open %d" % sum(1 for c in conns if not closed_by_peer(c)))
    for c in conns:
        c.close()


if __name__ == "__main__":
    main()
