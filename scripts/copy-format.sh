#!/usr/bin/env bash
# PostgreSQL's own cost of COPY text against COPY binary for the same rows (why the collector sends
# binary, src/storage/pg_copy.rs): N panel rows (SIZE-character messages, 8 loggers, 5 levels,
# time-ordered ids) are written once as a text file, loaded, and dumped again in binary; then the table is
# emptied and loaded from each file in turn, ROUNDS times, alternating, each load a server-side
# `COPY ... FROM 'file'` after a CHECKPOINT (no client, no network: only the server's parsing and
# inserting). Prints one line per load and the medians.
#
# Usage: scripts/copy-format.sh [N] [SIZE]   (200000, 256); ROUNDS (3), BIN (target/release binary, for
# `migrate`), PGURL_BASE (postgres://postgres@127.0.0.1:5432). Needs psql and a local server that can
# read /tmp (the files are made world-readable there).
set -euo pipefail
N=${1:-200000}
SIZE=${2:-256}
ROUNDS=${ROUNDS:-3}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${BIN:-$REPO/target/release/log-panel-collector}
PGURL_BASE=${PGURL_BASE:-postgres://postgres@127.0.0.1:5432}
DB=bench_copy_format
die() { echo "copy-format.sh: $*" >&2; exit 1; }
command -v psql >/dev/null || die "psql is missing"
[ -x "$BIN" ] || die "$BIN is missing (cargo build --release)"
WORK=$(mktemp -d /tmp/copy-format.XXXXXX)
chmod 1777 "$WORK"   # the server writes the binary file here
trap 'rm -rf "$WORK"' EXIT
P() { psql "$PGURL_BASE/$1" -qAtX -v ON_ERROR_STOP=1 "${@:2}"; }

python3 - "$N" "$SIZE" "$WORK/rows.tsv" <<'EOF'
import os, sys, time, uuid
n, size, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
names = ["sshd", "cron", "kernel", "nginx", "app.web", "app.db", "systemd", "postfix"]
levels = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
t0 = int(time.time() * 1000)
with open(path, "w") as f:
    for i in range(n):
        r = int.from_bytes(os.urandom(10), "big")
        uid = uuid.UUID(int=((t0 + i // 50) << 80) | (0x7 << 76) | ((r >> 68) & 0xFFF) << 64 | (0b10 << 62) | (r & ((1 << 62) - 1)))
        m = (f"message {i} " + "x" * size)[:size]
        ts = f"2026-11-27 12:{(i // 60000) % 60:02d}:{(i // 1000) % 60:02d}.{i % 1000:03d}+00"
        f.write(f"{uid}\t{ts}\t{levels[i % 5]}\t{names[i % 8]}\t{m}\thost1\t\t0\tf\t{len(m)}\n")
EOF
chmod 644 "$WORK/rows.tsv"
P postgres -c "set client_min_messages = warning" -c "drop database if exists $DB with (force)" -c "create database $DB"
printf '[storage]\nurl = "%s/%s"\n' "$PGURL_BASE" "$DB" >"$WORK/c.toml"
"$BIN" --config "$WORK/c.toml" migrate >/dev/null
COLS='id, "timestamp", level, logger_name, message, module, pathname, line_number, message_chunked, message_size'
P "$DB" -c "COPY log_panel_log ($COLS) FROM '$WORK/rows.tsv'" -c "COPY log_panel_log ($COLS) TO '$WORK/rows.bin' WITH (FORMAT binary)"
declare -A T
for k in $(seq 1 "$ROUNDS"); do
  for fmt in text binary; do
    f=$WORK/rows.tsv; [ "$fmt" = binary ] && f=$WORK/rows.bin
    P "$DB" -c "set client_min_messages = warning" -c "truncate log_panel_log cascade" -c checkpoint
    t0=$(date +%s.%N)
    P "$DB" -c "COPY log_panel_log ($COLS) FROM '$f' WITH (FORMAT $fmt)"
    t=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.3f}')" "$t0" "$(date +%s.%N)")
    echo "copy_format round=$k format=$fmt rows=$N seconds=$t rows_per_s=$(python3 -c "print(round($N / $t))")"
    T[$fmt]="${T[$fmt]:-} $t"
  done
done
python3 - ${T[text]} -- ${T[binary]} <<'EOF'
import statistics, sys
a = sys.argv[1:]
i = a.index("--")
text, binary = statistics.median(map(float, a[:i])), statistics.median(map(float, a[i + 1:]))
print(f"copy_format median text_s={text:.3f} binary_s={binary:.3f} binary/text={binary / text:.2f}")
EOF
P postgres -c "set client_min_messages = warning" -c "drop database if exists $DB with (force)"
