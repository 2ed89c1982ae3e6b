#!/usr/bin/env python3
"""SQLite's own limit for the panel's rows: prepared inserts of N rows into a file the collector
migrated (its `migrate`, so the same tables and indexes), in transactions of BATCH (5000), in WAL
mode with the `synchronous` level the collector uses (NORMAL). Only the inserts and commits are
timed; the rows are built first. Rows look like the collector's: 32-hex time-ordered ids, Django's
datetime text, 8 loggers, 5 levels, SIZE-character messages.

Usage: sqlite-limit.py DB_FILE N [SIZE] [BATCH]; prints `sqlite_limit rows=... rows_per_s=...`.
"""
import os
import sqlite3
import sys
import time
import uuid


def main() -> None:
    path, n = sys.argv[1], int(sys.argv[2])
    size = int(sys.argv[3]) if len(sys.argv) > 3 else 256
    batch = int(sys.argv[4]) if len(sys.argv) > 4 else 5000
    names = ["sshd", "cron", "kernel", "nginx", "app.web", "app.db", "systemd", "postfix"]
    levels = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
    t0 = int(time.time() * 1000)
    rows = []
    for i in range(n):
        r = int.from_bytes(os.urandom(10), "big")
        uid = uuid.UUID(
            int=((t0 + i // 50) << 80) | (0x7 << 76) | ((r >> 68) & 0xFFF) << 64 | (0b10 << 62) | (r & ((1 << 62) - 1))
        )
        m = (f"message {i} " + "x" * size)[:size]
        ts = f"2026-11-27 12:{(i // 60000) % 60:02d}:{(i // 1000) % 60:02d}.{i % 1000:03d}000"
        rows.append((uid.hex, ts, levels[i % 5], names[i % 8], m, "host1", "", 0, False, len(m)))
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    sql = (
        'INSERT INTO log_panel_log (id, "timestamp", level, logger_name, message, module, pathname, '
        "line_number, message_chunked, message_size) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    start = time.perf_counter()
    for k in range(0, n, batch):
        db.execute("BEGIN IMMEDIATE")
        db.executemany(sql, rows[k : k + batch])
        db.execute("COMMIT")
    elapsed = time.perf_counter() - start
    count = db.execute("SELECT count(*) FROM log_panel_log").fetchone()[0]
    print(
        f"sqlite_limit rows={count} batch={batch} sqlite={sqlite3.sqlite_version} "
        f"seconds={elapsed:.2f} rows_per_s={count / elapsed:.0f}"
    )


if __name__ == "__main__":
    main()
