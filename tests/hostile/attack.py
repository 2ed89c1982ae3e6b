"""Attacks for tests/hostile.rs, each against a running collector on loopback.

Usage: attack.py MODE HOST PORT [options]; prints one JSON document with what happened, so the Rust
test can assert it. Runs with the panel venv's Python (it has opentelemetry-proto for OTLP bodies).

Modes:
  otlp-body      build an OTLP protobuf body (--attr-bytes, --records, --nest) and write it to --out
  gzip-bomb      write a gzip body that inflates to --inflate bytes, to --out
  idle           open --conns TCP connections (optionally each with --partial bytes of an unfinished
                 frame), report how many the server closed, hold them until --hold seconds passed
                 or a line arrives on stdin, then close them
  slow           send --data one byte every --delay seconds; report when the server closed
"""
import argparse
import gzip
import json
import resource
import select
import socket
import sys
import time

p = argparse.ArgumentParser()
p.add_argument("mode")
p.add_argument("host", nargs="?", default="127.0.0.1")
p.add_argument("port", nargs="?", type=int, default=0)
p.add_argument("--attr-bytes", type=int, default=0)
p.add_argument("--records", type=int, default=0)
p.add_argument("--nest", type=int, default=0)
p.add_argument("--kvlist", action="store_true", help="nest kvlists instead of arrays")
p.add_argument("--inflate", type=int, default=0)
p.add_argument("--out")
p.add_argument("--conns", type=int, default=0)
p.add_argument("--partial", type=int, default=0)
p.add_argument("--hold", type=float, default=30.0)
p.add_argument("--settle", type=float, default=15.0)
p.add_argument("--fast", type=int, default=0, help="send the first FAST bytes at once")
p.add_argument("--data", default="")
p.add_argument("--delay", type=float, default=0.1)
p.add_argument("--limit", type=float, default=30.0, help="give up after this many seconds")
args = p.parse_args()


def otlp_body():
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    if args.attr_bytes:
        rl.resource.attributes.append(
            KeyValue(key="huge", value=AnyValue(string_value="A" * args.attr_bytes))
        )
    sl = rl.scope_logs.add()
    sl.scope.name = "hostile"
    for _ in range(args.records):
        sl.log_records.add()
    if args.nest > 90:
        return nested_by_hand(args.nest)
    if args.nest:
        v = AnyValue(string_value="deep")
        for _ in range(args.nest):
            outer = AnyValue()
            if args.kvlist:
                outer.kvlist_value.values.append(KeyValue(key="k", value=v))
            else:
                outer.array_value.values.append(v)
            v = outer
        lr = sl.log_records.add()
        lr.body.CopyFrom(v)
    return req.SerializeToString()


def conns_closed(socks, closed):
    """Adds to `closed` the sockets the server closed (readable with EOF, or reset). poll, not
    select: descriptors past 1024 are the point of the flood."""
    poller = select.poll()
    by_fd = {}
    for s in socks:
        if s.fileno() not in closed:
            poller.register(s, select.POLLIN | select.POLLHUP | select.POLLERR)
            by_fd[s.fileno()] = s
    for fd, _ in poller.poll(0):
        try:
            if by_fd[fd].recv(1, socket.MSG_PEEK) == b"":
                closed.add(fd)
        except OSError:
            closed.add(fd)


def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field(number, payload):
    """A length-delimited protobuf field."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def nested_by_hand(levels):
    """A request whose one record's body nests `levels` arrays deep, written on the wire by hand
    (the protobuf library refuses to build what is past its own recursion limit)."""
    v = field(1, b"deep")
    for _ in range(levels):
        v = field(5, field(1, v))
    return field(1, field(2, field(2, field(5, v))))


def main():
    if args.mode == "otlp-body":
        body = otlp_body()
        open(args.out, "wb").write(body)
        print(json.dumps({"bytes": len(body)}))
    elif args.mode == "gzip-bomb":
        chunk = b"\0" * (1 << 20)
        with gzip.open(args.out, "wb", compresslevel=9) as f:
            for _ in range(args.inflate // len(chunk)):
                f.write(chunk)
        print(json.dumps({"bytes": len(open(args.out, "rb").read())}))
    elif args.mode == "idle":
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, args.conns + 1024), hard))
        socks, refused = [], 0
        for i in range(args.conns):
            s = socket.socket()
            try:
                s.connect((args.host, args.port))
            except OSError:
                refused += 1
                s.close()
                continue
            if args.partial:
                # An octet-counted frame that announces more than it sends: never finished.
                header = f"{args.partial + 10} <13>".encode()
                try:
                    s.sendall(header + b"p" * args.partial)
                except OSError:
                    pass
            socks.append(s)
        # Count what the server closes until nothing changed for a second (at most --settle s).
        closed, last, t_change, t0 = set(), -1, time.time(), time.time()
        while time.time() - t0 < args.settle:
            conns_closed(socks, closed)
            if len(closed) != last:
                last, t_change = len(closed), time.time()
            elif time.time() - t_change > 1.0:
                break
            time.sleep(0.1)
        print(json.dumps({"opened": len(socks), "refused": refused, "closed": len(closed)}), flush=True)
        t0 = time.time()
        while time.time() - t0 < args.hold:
            r, _, _ = select.select([sys.stdin], [], [], 0.2)
            if r:
                break
        for s in socks:
            s.close()
    elif args.mode == "slow":
        s = socket.create_connection((args.host, args.port))
        t0 = time.time()
        sent = 0
        closed_at = None
        answer = ""
        data = args.data.encode()
        if args.fast:
            s.sendall(data[: args.fast])
            sent = args.fast
        while time.time() - t0 < args.limit:
            if sent < len(data):
                try:
                    s.sendall(data[sent : sent + 1])
                    sent += 1
                except OSError:
                    closed_at = time.time() - t0
                    break
            r, _, _ = select.select([s], [], [], args.delay)
            if r:
                try:
                    got = s.recv(65536)
                except OSError:
                    got = b""
                if got == b"":
                    closed_at = time.time() - t0
                    break
                answer += got.decode("latin-1")
        print(json.dumps({"sent": sent, "closed_after": closed_at, "answer": answer[:300]}))
    else:
        sys.exit(f"unknown mode {args.mode}")


main()
