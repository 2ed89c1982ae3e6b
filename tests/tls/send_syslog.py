"""Syslog over TLS (RFC 5425, octet counting) with Python's ssl module, for tests/tls.rs.

Usage: send_syslog.py HOST PORT --ca CA [--cert CERT --key KEY] [--server-name NAME]
                      [--count N | --until-file FILE] [--per-conn M] [--prefix P] [--probe]

Sends numbered RFC 5424 messages "P i", opening a new connection every M messages, and one long-lived
connection that stays open from start to end and sends every tenth message. Prints one line per
connection, flushed, "conn SHA256-OF-SERVER-CERT" (uppercase hex), and at the end
"done SENT LONG" (messages sent in all, of them on the long-lived connection).
With --probe: one connection, one message, then waits for the server's answer; prints "accepted"
(the server kept the connection open and silent) or "refused ERROR".
"""
import argparse
import hashlib
import os
import socket
import ssl
import sys
import time

p = argparse.ArgumentParser()
p.add_argument("host")
p.add_argument("port", type=int)
p.add_argument("--ca", required=True)
p.add_argument("--cert")
p.add_argument("--key")
p.add_argument("--server-name", default="localhost")
p.add_argument("--count", type=int, default=0)
p.add_argument("--until-file")
p.add_argument("--per-conn", type=int, default=20)
p.add_argument("--prefix", default="tls")
p.add_argument("--probe", action="store_true")
args = p.parse_args()

ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=args.ca)
if args.cert:
    ctx.load_cert_chain(args.cert, args.key)


def connect():
    raw = socket.create_connection((args.host, args.port), timeout=10)
    s = ctx.wrap_socket(raw, server_hostname=args.server_name)
    fp = hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest().upper()
    print(f"conn {fp}", flush=True)
    return s


def frame(i):
    msg = f"<134>1 2026-12-01T10:00:00Z tlshost tlsapp 42 m{i} - {args.prefix} {i}".encode()
    return str(len(msg)).encode() + b" " + msg


if args.probe:
    try:
        s = connect()
        s.sendall(frame(0))
        s.settimeout(2)
        try:
            data = s.recv(1)
            print("refused closed" if data == b"" else "accepted")
        except TimeoutError:
            print("accepted")
        except ssl.SSLError as e:
            print(f"refused {e}")
    except (ssl.SSLError, OSError) as e:
        print(f"refused {e}")
    sys.exit(0)

long_lived = connect()
sent = long_count = 0
conn = None
in_conn = 0
i = 0
while True:
    if args.count and i >= args.count:
        break
    if args.until_file and not args.count and os.path.exists(args.until_file):
        break
    if i % 10 == 0:
        long_lived.sendall(frame(i))
        long_count += 1
    else:
        if conn is None or in_conn >= args.per_conn:
            if conn is not None:
                conn.close()
            conn = connect()
            in_conn = 0
        conn.sendall(frame(i))
        in_conn += 1
    sent += 1
    i += 1
    if args.until_file:
        time.sleep(0.002)
if conn is not None:
    conn.close()
long_lived.close()
print(f"done {sent} {long_count}", flush=True)
