"""Look at a collector-written database through django-log-panel.

Usage (any cwd; database chosen by the PANEL_* env vars, see panelsite/settings.py):
    python tests/panel/check_panel.py admin EXPECT.json [-v]
    python tests/panel/check_panel.py migrate [--expect-noop]
    python tests/panel/check_panel.py schema
    python tests/panel/check_panel.py rebuild-compare
"""
import argparse
import hashlib
import html
import io
import json
import os
import re
import sys
import traceback
import uuid
from collections import Counter
from datetime import UTC, datetime

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
os.environ["DJANGO_SETTINGS_MODULE"] = "panelsite.settings"

import django  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.exceptions import ImproperlyConfigured  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connections  # noqa: E402
from django.db.migrations.executor import MigrationExecutor  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from django.urls import reverse  # noqa: E402
from django.utils import timezone  # noqa: E402
from django.utils.html import escape  # noqa: E402

LOGS = "logs"
ERROR_LEVELS = ("ERROR", "CRITICAL")


class Checks:
    """Counts passed checks and prints every failed one (expected vs got)."""

    def __init__(self, verbose=False):
        self.passed, self.failed, self.verbose = 0, 0, verbose

    def eq(self, label, expected, got):
        return self.ok(label, expected == got, f"expected {short(expected)}, got {short(got)}")

    def ok(self, label, condition, detail=""):
        if condition:
            self.passed += 1
            if self.verbose:
                print(f"ok    {label}")
        else:
            self.failed += 1
            print(f"FAIL  {label}: {detail}")
        return condition


def short(value, limit=300):
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


# ------------------------------------------------------------------ admin

def fetch(client, url, params=None):
    resp = client.get(url, params or {})
    if resp.status_code != 200:
        raise AssertionError(f"GET {url} {params or ''} -> HTTP {resp.status_code} {resp.get('Location', '')}")
    return resp, resp.content.decode()


def fetch_dashboard(client, rng):
    """All pages of the cards dashboard: ({logger: row}, concatenated html, card count)."""
    rows, pages, page = {}, [], 1
    while True:
        resp, text = fetch(client, reverse("admin:log_panel_log_changelist"), {"range": rng, "cards_page": page})
        ctx = resp.context
        if ctx["error"]:
            raise AssertionError(f"dashboard range={rng} shows backend error: {ctx['error']}")
        if ctx["selected_range"] != rng:
            raise AssertionError(f"dashboard has no range {rng!r} (showed {ctx['selected_range']!r})")
        rows.update({row["logger_name"]: row for row in ctx["logger_rows"]})
        pages.append(text)
        if not ctx["has_next_cards"]:
            return rows, "".join(pages), ctx["total_cards"]
        page += 1


def card_html(text, logger):
    """The rendered HTML of one logger's card (from its name link to the next card)."""
    name = escape(logger)
    start = text.find(f'<a class="status-logger-name" href="?logger_name__exact={name}">{name}</a>')
    if start < 0:
        return None
    end = text.find('<div class="status-row">', start)
    return text[start:] if end < 0 else text[start:end]


def plural(n, word):
    return f"{n} {word}{'' if n == 1 else 's'}</span>"


def check_cards(chk, client, expect):
    if not expect.get("cards") and not expect.get("no_cards"):
        return
    rows, text, _ = fetch_dashboard(client, "24h")
    for logger, want in expect.get("cards", {}).items():
        row = rows.get(logger)
        if not chk.ok(f"card {logger}: present", row is not None, f"no card (cards: {sorted(rows)})"):
            continue
        for key, field in (("total", "total"), ("errors", "total_errors"), ("warnings", "total_warnings")):
            if key in want:
                chk.eq(f"card {logger}: {field}", want[key], row[field])
        seg = card_html(text, logger)
        if not chk.ok(f"card {logger}: html card", seg is not None, "no status-logger-name link in HTML"):
            continue
        total = want.get("total", row["total"])
        head, sep, totals = seg.partition(f'<div class="badge-section">Total ({total})</div>')
        shown = re.findall(r"Total \((\d+)\)", seg)
        if not chk.ok(f"card {logger}: html 'Total ({total})'", sep, f"card HTML shows Total {shown}"):
            continue
        totals = totals.split('<div class="timeline">')[0]
        errors, warnings = want.get("errors", row["total_errors"]), want.get("warnings", row["total_warnings"])
        for n, word, css in ((errors, "error", "badge-error"), (warnings, "warning", "badge-warning")):
            if n:
                chk.ok(f"card {logger}: html badge '{n} {word}'", plural(n, word) in totals, short(totals.strip()))
            else:
                chk.ok(f"card {logger}: html no {css} in totals", css not in totals, short(totals.strip()))
    for logger in expect.get("no_cards", []):
        found = {k: v for k, v in rows.get(logger, {}).items() if k != "timeline"}
        chk.ok(f"no card for {logger}", logger not in rows, f"card found: {found}")
        chk.ok(f"no card for {logger} (html)", card_html(text, logger) is None, "card link found in HTML")


def slot_html_status(text, logger, slot):
    pattern = (r'<a class="timeline-slot ([a-z]+)"\s+href="\?logger_name__exact=' + re.escape(escape(logger))
               + "&timestamp__gte=" + re.escape(slot["timestamp_from"])
               + "&timestamp__lt=" + re.escape(slot["timestamp_to"]) + '"')
    m = re.search(pattern, text)
    return m.group(1) if m else None


def check_timelines(chk, client, expect):
    tz = timezone.get_default_timezone()
    wanted_ranges = {t["range"] for t in expect.get("timeline", [])} | set(expect.get("timeline_slots", {}))
    for rng in sorted(wanted_ranges):
        rows, text, n_cards = fetch_dashboard(client, rng)
        if rng in expect.get("timeline_slots", {}):
            n = expect["timeline_slots"][rng]
            for logger, row in sorted(rows.items()):
                chk.eq(f"timeline {rng} {logger}: slot count", n, len(row["timeline"]))
            chk.eq(f"timeline {rng}: html slots ({n_cards} cards)", n * n_cards, text.count('class="timeline-slot '))
        for t in (t for t in expect.get("timeline", []) if t["range"] == rng):
            at = datetime.fromisoformat(t["at"].replace("Z", "+00:00"))
            at = at if timezone.is_aware(at) else at.replace(tzinfo=UTC)
            label = f"timeline {rng} {t['logger']} @ {t['at']}"
            row = rows.get(t["logger"])
            if not chk.ok(f"{label}: card", row is not None, f"no card for {t['logger']!r}"):
                continue
            slot = next((s for s in row["timeline"] if slot_bound(s, "timestamp_from", tz) <= at
                         < slot_bound(s, "timestamp_to", tz)), None)
            window = f"{row['timeline'][0]['timestamp_from']} .. {row['timeline'][-1]['timestamp_to']} {tz}"
            if not chk.ok(f"{label}: in window", slot is not None, f"instant outside the timeline window {window}"):
                continue
            chk.eq(f"{label} (slot {slot['label']})", t["status"], str(slot["status"]))
            chk.eq(f"{label} (html slot {slot['label']})", t["status"], slot_html_status(text, t["logger"], slot))


def slot_bound(slot, key, tz):
    return timezone.make_aware(datetime.strptime(slot[key], "%Y-%m-%dT%H:%M"), tz)


def check_table(chk, client, label, params, count):
    resp, text = fetch(client, reverse("admin:log_panel_log_changelist"), params)
    if not chk.ok(f"{label}: table view", "cl" in resp.context, "the dashboard was shown, not the changelist"):
        return
    chk.eq(f"{label}: result_count", count, resp.context["cl"].result_count)
    m = re.search(r'class="paginator"[^>]*>(.*?)</nav>', text, re.S)
    shown = re.findall(r"(\d+)\s+Logs?\b", re.sub(r"<[^>]+>", " ", m.group(1))) if m else []
    chk.eq(f"{label}: html paginator count", str(count), shown[-1] if shown else None)


def check_full_message(chk, client, item):
    pk = uuid.UUID(item["id"])
    label = f"full message {pk}"
    resp, text = fetch(client, reverse("admin:log_panel_log_message", args=[str(pk)]))
    msg = resp.context["log_message"]
    if "length" in item:
        chk.eq(f"{label}: length", item["length"], len(msg))
        chk.eq(f"{label}: html size row (message_size)", f"{item['length']} characters",
               next(iter(re.findall(r"<td>([^<]*characters)</td>", text)), None))
    if "sha256" in item:
        chk.eq(f"{label}: sha256", item["sha256"].lower(), hashlib.sha256(msg.encode()).hexdigest())
    m = re.search(r'<pre class="log-full-message">(.*?)</pre>', text, re.S)
    chk.ok(f"{label}: html <pre> equals log_message", m and html.unescape(m.group(1)) == msg,
           "missing" if not m else f"rendered {len(html.unescape(m.group(1)))} chars, context {len(msg)} chars")


def cmd_admin(args):
    with open(args.expect_json) as fh:
        expect = json.load(fh)
    call_command("migrate", database="default", verbosity=0, interactive=False)
    setup_test_environment()  # makes response.context available
    get_user_model().objects.create_superuser("panel", "panel@example.com", "panel-pw")
    client = Client()
    if not client.login(username="panel", password="panel-pw"):
        sys.exit("admin: test-client login failed")
    chk = Checks(args.verbose)
    sections = [("cards", lambda: check_cards(chk, client, expect)),
                ("timeline", lambda: check_timelines(chk, client, expect))]
    for t in expect.get("table", []):
        params = {k: str(v) for k, v in t["params"].items()}
        sections.append((f"table {params}", lambda p=params, c=t["count"]: check_table(chk, client, f"table {p}", p, c)))
    for s in expect.get("search", []):
        sections.append((f"search {s['q']!r}", lambda s=s: check_table(chk, client, f"search {s['q']!r}",
                                                                     {"q": s["q"]}, s["count"])))
    for item in expect.get("full_message", []):
        sections.append((f"full message {item['id']}", lambda i=item: check_full_message(chk, client, i)))
    for name, run in sections:
        try:
            run()
        except Exception as exc:  # a crash in one section is a failure, keep checking the others
            chk.ok(name, False, f"{type(exc).__name__}: {exc}")
            if args.verbose:
                traceback.print_exc()
    print(f"panel check: {chk.passed} passed, {chk.failed} failed")
    return 1 if chk.failed else 0


# ------------------------------------------------------------------ schema / migrate

def jsonable(value):
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value if value is None or isinstance(value, (bool, int, float, str)) else str(value)


def describe_schema(only_log_panel=True):
    conn = connections[LOGS]
    intro = conn.introspection
    tables = {}
    with conn.cursor() as cursor:
        for info in sorted(intro.get_table_list(cursor), key=lambda i: i.name):
            if info.type != "t" or (only_log_panel and not info.name.startswith("log_panel_")):
                continue
            columns = []
            for col in intro.get_table_description(cursor, info.name):
                desc = {k: jsonable(v) for k, v in col._asdict().items() if k not in ("name", "null_ok")}
                columns.append({"name": col.name, "field": intro.get_field_type(col.type_code, col),
                                "null": col.null_ok, **desc})
            constraints = {name: {k: jsonable(v) for k, v in sorted(c.items())}
                           for name, c in sorted(intro.get_constraints(cursor, info.name).items())}
            tables[info.name] = {"columns": columns, "constraints": constraints}
        migrations = None
        if "django_migrations" in intro.table_names(cursor):
            cursor.execute("SELECT name FROM django_migrations WHERE app = %s ORDER BY name", ["log_panel"])
            migrations = [r[0] for r in cursor.fetchall()]
    return {"vendor": conn.vendor, "tables": tables, "log_panel_migrations": migrations}


def schema_diff(before, after):
    lines = []
    for table in sorted(set(before["tables"]) | set(after["tables"])):
        b, a = before["tables"].get(table), after["tables"].get(table)
        if b is None or a is None:
            lines.append(f"table {table}: {'created' if b is None else 'dropped'}")
            continue
        for kind in ("columns", "constraints"):
            bk = {c["name"]: c for c in b[kind]} if kind == "columns" else b[kind]
            ak = {c["name"]: c for c in a[kind]} if kind == "columns" else a[kind]
            for name in sorted(set(bk) | set(ak)):
                if bk.get(name) != ak.get(name):
                    lines.append(f"{table} {kind[:-1]} {name}: before {bk.get(name)} after {ak.get(name)}")
        if [c["name"] for c in b["columns"]] != [c["name"] for c in a["columns"]]:
            lines.append(f"{table}: column order changed")
    return lines


def cmd_migrate(args):
    before = describe_schema(only_log_panel=False)
    executor = MigrationExecutor(connections[LOGS])
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes("log_panel"))
    out = io.StringIO()
    try:
        call_command("migrate", "log_panel", database=LOGS, interactive=False, stdout=out)
    except Exception as exc:
        print(out.getvalue(), end="")
        print(f"FAIL  migrate: {type(exc).__name__}: {exc}")
        return 1
    print(out.getvalue(), end="")
    if not args.expect_noop:
        return 0
    problems = [f"migration to apply: {m.app_label}.{m.name}" for m, _ in plan]
    if "No migrations to apply" not in out.getvalue():
        problems.append("Django did not report 'No migrations to apply'")
    problems += schema_diff(before, describe_schema(only_log_panel=False))
    for p in problems:
        print(f"FAIL  migrate --expect-noop: {p}")
    print(f"migrate --expect-noop: {'FAILED' if problems else 'ok, nothing applied, schema unchanged'}")
    return 1 if problems else 0


def cmd_schema(args):
    print(json.dumps(describe_schema(), indent=2, sort_keys=True))
    return 0


# ------------------------------------------------------------------ rebuild-compare

def local_trunc(ts, tz, unit):
    """Mirror TruncHour/TruncDay("timestamp") in the current time zone (rebuild_log_cards)."""
    local = timezone.localtime(ts, tz).replace(tzinfo=None, minute=0, second=0, microsecond=0, fold=0)
    if unit == "day":
        local = local.replace(hour=0)
    return timezone.make_aware(local, tz).astimezone(UTC)


def cmd_rebuild_compare(args):
    from log_panel.models import Log, LogCard, LogTimelineBucket

    tz = timezone.get_default_timezone()
    cards, buckets = {}, Counter()
    for name, level, ts in Log.objects.values_list("logger_name", "level", "timestamp").iterator(chunk_size=2000):
        err, warn = int(level in ERROR_LEVELS), int(level == "WARNING")
        total, errors, warnings, last = cards.get(name, (0, 0, 0, ts))
        cards[name] = (total + 1, errors + err, warnings + warn, max(last, ts))
        for unit in ("hour", "day"):
            buckets[(name, unit, local_trunc(ts, tz, unit), "log")] += 1
            buckets[(name, unit, local_trunc(ts, tz, unit), "error")] += err
            buckets[(name, unit, local_trunc(ts, tz, unit), "warning")] += warn
    expected_buckets = {}
    for (name, unit, bucket, kind), n in buckets.items():
        expected_buckets.setdefault((name, unit, bucket), {"log": 0, "error": 0, "warning": 0})[kind] = n

    diffs = []
    stored_cards = {}
    for c in LogCard.objects.select_related("logger"):
        stored_cards[c.logger.name] = (c.total, c.total_errors, c.total_warnings, c.last_seen)
    show = lambda c: c and "total=%s errors=%s warnings=%s last_seen=%s" % (*c[:3], c[3] and c[3].isoformat())
    for name in sorted(set(cards) | set(stored_cards)):
        want, got = cards.get(name), stored_cards.get(name)
        if want != got:
            diffs.append(f"card {name}: rebuild {show(want)}, stored {show(got)}")

    stored_buckets = {}
    for b in LogTimelineBucket.objects.select_related("logger"):
        key = (b.logger.name, b.unit, b.bucket.astimezone(UTC))
        if key in stored_buckets:
            diffs.append(f"bucket {key[0]} {key[1]} {key[2].isoformat()}: stored more than once")
        stored_buckets[key] = {"log": b.log_count, "error": b.error_count, "warning": b.warning_count}
    for key in sorted(set(expected_buckets) | set(stored_buckets)):
        want, got = expected_buckets.get(key), stored_buckets.get(key)
        if want != got:
            diffs.append(f"bucket {key[0]} {key[1]} {key[2].isoformat()}: rebuild {want}, stored {got}")

    for d in diffs:
        print(f"DIFF  {d}")
    print(f"rebuild-compare (TIME_ZONE={settings.TIME_ZONE}): {len(cards)} cards, "
          f"{len(expected_buckets)} buckets expected, {len(diffs)} differences")
    return 1 if diffs else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("admin", help="check admin pages against an expectation JSON file")
    p.add_argument("expect_json")
    p.add_argument("-v", "--verbose", action="store_true", help="also print passed checks")
    p = sub.add_parser("migrate", help="migrate log_panel --database logs")
    p.add_argument("--expect-noop", action="store_true", help="fail unless nothing is applied or changed")
    sub.add_parser("schema", help="print the log_panel tables as Django introspection sees them")
    sub.add_parser("rebuild-compare", help="compare stored cards/buckets with what rebuild_log_cards would write")
    args = parser.parse_args()
    try:
        django.setup()
    except ImproperlyConfigured as exc:
        sys.exit(f"check_panel: {exc}")
    db = settings.DATABASES[LOGS]["NAME"]
    if args.command != "migrate" and connections[LOGS].vendor == "sqlite" and not os.path.exists(db):
        sys.exit(f"{args.command}: SQLite database {db} does not exist")
    commands = {"admin": cmd_admin, "migrate": cmd_migrate, "schema": cmd_schema,
                "rebuild-compare": cmd_rebuild_compare}
    return commands[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
