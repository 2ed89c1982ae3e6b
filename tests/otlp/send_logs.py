"""Send Python log records through the OpenTelemetry SDK's LoggingHandler and an OTLP exporter.

Usage: send_logs.py grpc|http ENDPOINT [--big N] [--count N --prefix P]
                    [--ca CA [--cert CERT --key KEY]] [--token TOKEN]
(--ca: TLS with that CA file, an https:// ENDPOINT; --cert/--key: a client certificate;
--token: sent as "Authorization: Bearer TOKEN")
Prints one JSON document on stdout describing what was logged (logger, level, line, message), so the
Rust test can compare it with what the collector stored.
"""
import argparse
import json
import logging
import sys

from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource

parser = argparse.ArgumentParser()
parser.add_argument("protocol", choices=["grpc", "http"])
parser.add_argument("endpoint")
parser.add_argument("--big", type=int, default=300_000, help="length of the big message (0: none)")
parser.add_argument("--count", type=int, default=0, help="only send COUNT numbered INFO records")
parser.add_argument("--prefix", default="numbered")
parser.add_argument("--size", type=int, default=50, help="padding of numbered records")
parser.add_argument("--ca", help="CA file: TLS (endpoint https://)")
parser.add_argument("--cert", help="client certificate (PEM)")
parser.add_argument("--key", help="client key (PEM)")
parser.add_argument("--token", help="bearer token")
args = parser.parse_args()

headers = {"authorization": f"Bearer {args.token}"} if args.token else None

if args.protocol == "grpc":
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.grpc.exporter import Compression

    if args.ca:
        import grpc

        def read(path):
            with open(path, "rb") as fh:
                return fh.read()

        creds = grpc.ssl_channel_credentials(
            root_certificates=read(args.ca),
            private_key=read(args.key) if args.key else None,
            certificate_chain=read(args.cert) if args.cert else None,
        )
        exporter = OTLPLogExporter(endpoint=args.endpoint, insecure=False, credentials=creds,
                                   headers=headers, compression=Compression.Gzip)
    else:
        exporter = OTLPLogExporter(endpoint=args.endpoint, insecure=True, headers=headers,
                                   compression=Compression.Gzip)
else:
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

    exporter = OTLPLogExporter(endpoint=args.endpoint, compression=Compression.Gzip, headers=headers,
                               certificate_file=args.ca, client_certificate_file=args.cert,
                               client_key_file=args.key)

provider = LoggerProvider(resource=Resource.create({"service.name": "otlp-test-shop"}))
provider.add_log_record_processor(BatchLogRecordProcessor(exporter, schedule_delay_millis=100, max_queue_size=100_000))
handler = LoggingHandler(level=logging.DEBUG, logger_provider=provider)

sent = []


def here():
    return sys._getframe(1).f_lineno


if args.count:
    log = logging.getLogger(f"{args.prefix}.load")
    log.setLevel(logging.DEBUG)
    log.addHandler(handler)
    pad = "p" * args.size
    for i in range(args.count):
        log.info("%s %d %s", args.prefix, i, pad)
    sent.append({"count": args.count})
else:
    shop = logging.getLogger("shop.checkout")
    shop.setLevel(logging.DEBUG)
    shop.addHandler(handler)
    shop.propagate = False
    for level in ["debug", "info", "warning", "error", "critical"]:
        getattr(shop, level)(f"{level} from python"); line = here()  # noqa: E702
        sent.append({"logger": "shop.checkout", "level": level.upper(), "line": line, "message": f"{level} from python"})
    try:
        1 / 0
    except ZeroDivisionError:
        shop.exception("payment failed"); line = here()  # noqa: E702
        sent.append({"logger": "shop.checkout", "level": "ERROR", "line": line, "message": "payment failed", "traceback": True})
    if args.big:
        big_log = logging.getLogger("shop.bulk")
        big_log.setLevel(logging.DEBUG)
        big_log.addHandler(handler)
        big_log.propagate = False
        text = ("ab€🎉" * (args.big // 4 + 1))[: args.big]
        needle = "NEEDLE-in-otlp-chunk"
        text = text[:200_000] + needle + text[200_000 + len(needle):] if args.big > 200_100 else text
        big_log.warning(text); line = here()  # noqa: E702
        sent.append({"logger": "shop.bulk", "level": "WARNING", "line": line, "message": text, "needle": needle})

provider.force_flush()
provider.shutdown()
for name in list(logging.Logger.manager.loggerDict):
    logging.getLogger(name).removeHandler(handler)
import os

json.dump({"file": os.path.abspath(__file__), "records": sent}, sys.stdout)
