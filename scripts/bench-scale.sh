#!/usr/bin/env bash
# Scaling and memory benchmark of the release binary, with its own load generator (`log-panel-collector
# bench --protocol tcp`, syslog RFC 3164 over TCP, LF framing), on every backend (issue 11, goals 4 and 5):
#
#   scale     rows/s (the bench's stored_per_s, read from the daemon's /metrics) for each backend x message
#             size x N x concurrency, each into a fresh database (PostgreSQL, MariaDB: dropped, created and
#             `migrate`d; SQLite: a fresh file with the embedded default's settings, spool on beside it;
#             MongoDB: a fresh database on the server at MONGO_URL, by default the nx-27017 stand-in this
#             script starts). For every run: the load average at its start, the daemon's peak RSS (VmHWM
#             from /proc/PID/status, read right before SIGTERM), and a check that the rows in the
#             database equal what was sent and the cards' totals equal the rows (the script exits non-zero
#             on a mismatch). Runs with N > SLICE (200000) also sample rows_written_total from /metrics
#             every SAMPLE_S and report the rate per SLICE-row slice: how the rate changes as the table grows.
#   idle      the embedded default (`run` without a config, in an empty temp dir) after IDLE_S (10 s) idle:
#             VmRSS (target <= 20 MiB)
#   overload  PostgreSQL, queue_bytes = OVERLOAD_QUEUE (16MiB), spool off; log_panel_log locked (ACCESS
#             EXCLUSIVE, held by a psql session for LOCK_S) while 10 x queue_bytes of message text is sent,
#             half over syslog TCP, half over OTLP/gRPC (4 connections each); then the lock goes, everything
#             must be stored. Reports VmHWM while locked and at the end against queue_bytes.
#
# Usage: scripts/bench-scale.sh            (all parts; about 25 minutes on a 2-core machine)
#        BACKENDS=postgres SIZES=256 NS=200000 CONCS=16 scripts/bench-scale.sh
#        PARTS="idle overload" scripts/bench-scale.sh
# Environment:
#   PARTS       parts to run (default "scale idle overload")
#   BACKENDS    default "postgres mariadb sqlite mongo"
#   SIZES       message sizes in characters (default "256 4096 300000")
#   NS          record counts for messages of at most 1 KiB (default "200000 1000000")
#   MID_N       record count for sizes up to 64 KiB (default 200000)
#   BIG_N       record count for larger, chunked messages (default 2000)
#   CONCS       concurrent TCP senders (default "1 16")
#   BIG_CONCS   senders for the larger Ns of NS (default: CONCS); MONGO_BIG_CONCS the same on MongoDB
#               (default "16": the stand-in stores about 2,000 rows/s, its large runs would take too long)
#   MAX_RUN_S   a run expected to take longer (estimated from the smallest N of the same backend, size and
#               concurrency, plus 25 %) gets the largest N in steps of 100000 that fits (default 360)
#   SLICE, SAMPLE_S   slice size (200000) and sampling period (0.5 s) of the growth figures
#   MONGO_URL   a MongoDB to use (mongodb://HOST:PORT); unset: the stand-in (scripts/mongo-test-server.sh with
#               MONGO_TEST_ROOT=/tmp/lpc-mongo-scale, MONGO_TEST_PORT=27941) is started and stopped here, and
#               its figures are marked "stand-in"
#   EXTRA_TOML  scale: lines appended to each daemon's config, e.g. '[batch]\nmax_bytes = "64MiB"'
#   OVERLOAD_QUEUE, OVERLOAD_SIZES, LOCK_S   overload: queue_bytes (16MiB), record sizes ("4096 256"), lock (30 s)
#   OVERLOAD_PROTOCOLS  the senders of the overload part, sharing the 10 x queue_bytes (default "tcp otlp-grpc")
#   OVERLOAD_BATCH  more [batch] keys for the overload part, e.g. "max_records = 1000" or "writers = 1"
#   OVERLOAD_PENDING  [syslog] max_pending_bytes for the overload part (default: the default, 64MiB)
#   IDLE_S      idle part: seconds to wait before reading VmRSS (10)
#   BIN         the collector binary (default target/release/log-panel-collector; not rebuilt here)
#   OUT         where results and daemon logs go (default target/bench-scale/)
#   PGURL_BASE  default postgres://postgres@127.0.0.1:5432; MYSQL_ARGS default "-h127.0.0.1 -P3306 -uroot"
set -euo pipefail

die() { echo "bench-scale: $*" >&2; exit 1; }

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${BIN:-$REPO/target/release/log-panel-collector}
PARTS=${PARTS:-scale idle overload}
BACKENDS=${BACKENDS:-postgres mariadb sqlite mongo}
SIZES=${SIZES:-256 4096 300000}
NS=${NS:-200000 1000000}
MID_N=${MID_N:-200000}
BIG_N=${BIG_N:-2000}
CONCS=${CONCS:-1 16}
BIG_CONCS=${BIG_CONCS:-$CONCS}
MONGO_BIG_CONCS=${MONGO_BIG_CONCS:-16}
MAX_RUN_S=${MAX_RUN_S:-360}
SLICE=${SLICE:-200000}
SAMPLE_S=${SAMPLE_S:-0.5}
OVERLOAD_QUEUE=${OVERLOAD_QUEUE:-16MiB}
OVERLOAD_SIZES=${OVERLOAD_SIZES:-4096 256}
LOCK_S=${LOCK_S:-30}
OVERLOAD_PROTOCOLS=${OVERLOAD_PROTOCOLS:-tcp otlp-grpc}
IDLE_S=${IDLE_S:-10}
OUT=${OUT:-$REPO/target/bench-scale}
PGURL_BASE=${PGURL_BASE:-postgres://postgres@127.0.0.1:5432}
read -r -a MYSQL_ARGS <<<"${MYSQL_ARGS:--h127.0.0.1 -P3306 -uroot}"
MONGO_ROOT=${MONGO_TEST_ROOT:-/tmp/lpc-mongo-scale}
MONGO_PORT=${MONGO_TEST_PORT:-27941}

[ -x "$BIN" ] || die "$BIN is missing: cargo build --release (or set BIN)"
for tool in curl python3; do command -v "$tool" >/dev/null || die "$tool is missing"; done
has() { [[ " $2 " == *" $1 "* ]]; }
has postgres "$BACKENDS" || has overload "$PARTS" && { command -v psql >/dev/null || die "psql is missing"; }
has mariadb "$BACKENDS" && { command -v mysql >/dev/null || die "mysql (the client) is missing"; }

mkdir -p "$OUT"
WORK=$(mktemp -d)
RESULTS=$OUT/results.tsv
SLICES=$OUT/slices.tsv
NOTES=$OUT/notes.txt
: >"$RESULTS"; : >"$SLICES"; : >"$NOTES"
DAEMON_PID=""
BG_PIDS=()
MONGO_STARTED=""
FAILED=""
cleanup() {
  for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -n "$DAEMON_PID" ]; then kill -TERM "$DAEMON_PID" 2>/dev/null || true; wait "$DAEMON_PID" 2>/dev/null || true; fi
  [ -z "$MONGO_STARTED" ] || MONGO_TEST_ROOT=$MONGO_ROOT MONGO_TEST_PORT=$MONGO_PORT "$REPO/scripts/mongo-test-server.sh" stop || true
  rm -rf "$WORK"
}
trap cleanup EXIT

note() { echo "note: $*" | tee -a "$NOTES" >&2; }
field() { sed -n "s/.*[[:space:]]$1=\([^[:space:]]*\).*/\1/p" <<<"$2" | tail -1; }
loadavg() { cut -d' ' -f1 /proc/loadavg; }
status_kib() { sed -n "s/^$2:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$1/status"; }
mib() { python3 -c "import sys; print(f'{int(sys.argv[1]) / 1024:.1f}')" "$1"; }
psql_db() { psql "$PGURL_BASE/$1" -XAtq -v ON_ERROR_STOP=1 "${@:2}"; }
mysql_db() { mysql "${MYSQL_ARGS[@]}" -N -B "$@"; }
sqlite_q() { python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()[0])' "$@"; }

# daemon_port LOG "syslog tcp": the port the daemon reports on stderr for that listener
daemon_port() {
  local port=""
  for _ in $(seq 1 150); do
    port=$(sed -n "s/^listening on $2 [^ ]*:\([0-9]*\)\( .*\)\{0,1\}\$/\1/p" "$1" | head -1)
    [ -n "$port" ] && { echo "$port"; return 0; }
    kill -0 "$DAEMON_PID" 2>/dev/null || { cat "$1" >&2; die "the collector exited at start"; }
    sleep 0.1
  done
  cat "$1" >&2; die "the collector did not report its $2 port"
}

start_daemon() { # start_daemon CONFIG LOG: starts `run` in the background, sets DAEMON_PID
  : >"$2"   # truncated here, not by the child's redirect: daemon_port must not read a previous run's port
  RUST_LOG=${RUST_LOG:-warn} "$BIN" --config "$1" run 2>"$2" &
  DAEMON_PID=$!
}

# stop_daemon: SIGTERM and wait; sets HWM_KIB and RSS_KIB (read right before the signal)
stop_daemon() {
  HWM_KIB=$(status_kib "$DAEMON_PID" VmHWM); RSS_KIB=$(status_kib "$DAEMON_PID" VmRSS)
  kill -TERM "$DAEMON_PID"
  local rc=0; wait "$DAEMON_PID" || rc=$?
  DAEMON_PID=""
  [ "$rc" = 0 ] || { note "the daemon exited with status $rc on SIGTERM"; FAILED=1; }
}

rows_written() { # rows_written METRICS_PORT: rows_written_total summed over its labels
  curl -fsS --max-time 2 "http://127.0.0.1:$1/metrics" |
    awk '/^log_panel_collector_rows_written_total[{ ]/ { s += $NF } END { printf "%d\n", s }'
}

# --- MongoDB: the stand-in, unless MONGO_URL names a real server --------------------------------------
MONGO_PY=python3
mongo_setup() {
  if [ -n "${MONGO_URL:-}" ]; then
    MONGO_LABEL="MongoDB"
    python3 -c 'import pymongo' 2>/dev/null || die "MONGO_URL set but python3 has no pymongo"
    return
  fi
  MONGO_LABEL="MongoDB stand-in (nx-27017), not MongoDB"
  MONGO_URL=mongodb://127.0.0.1:$MONGO_PORT
  if ! MONGO_TEST_ROOT=$MONGO_ROOT MONGO_TEST_PORT=$MONGO_PORT "$REPO/scripts/mongo-test-server.sh" status >/dev/null 2>&1; then
    MONGO_TEST_ROOT=$MONGO_ROOT MONGO_TEST_PORT=$MONGO_PORT "$REPO/scripts/mongo-test-server.sh" start >&2 ||
      die "the MongoDB stand-in did not start"
    MONGO_STARTED=1
  fi
  MONGO_PY=$MONGO_ROOT/venv/bin/python
}
mongo_q() { # mongo_q DB drop|check: drop the database, or print "rows cards chunks"
  "$MONGO_PY" - "$MONGO_URL" "$@" <<'PY'
import sys
from pymongo import MongoClient
url, db, what = sys.argv[1:4]
c = MongoClient(url)
if what == "drop":
    c.drop_database(db)
else:
    d = c[db]
    rows = d.log_panel_log.count_documents({})
    cards = sum(int(x.get("total", 0)) for x in d.log_panel_log_card.find({}, {"total": 1}))
    chunks = d.log_panel_log_message_chunk.count_documents({})
    print(rows, cards, chunks)
PY
}

# --- one scaling run ----------------------------------------------------------------------------------
# prepare BACKEND RUNID: a fresh, migrated database; sets URL, DBNAME, SPOOL_NOTE
prepare() {
  case $1 in
  postgres)
    DBNAME=lpc_scale
    psql_db postgres -c "set client_min_messages = warning" -c "drop database if exists $DBNAME with (force)" -c "create database $DBNAME"
    URL=$PGURL_BASE/$DBNAME ;;
  mariadb)
    DBNAME=lpc_scale
    mysql_db -e "drop database if exists $DBNAME; create database $DBNAME character set utf8mb4 collate utf8mb4_unicode_ci"
    URL="mysql://root@127.0.0.1:3306/$DBNAME" ;;
  sqlite)
    DBNAME=$WORK/scale.sqlite3
    rm -rf "$DBNAME" "$DBNAME"-wal "$DBNAME"-shm "$WORK/scale.spool"
    URL="sqlite://$DBNAME" ;;
  mongo)
    [ -z "${DBNAME:-}" ] || [[ "$DBNAME" != lpc_scale_* ]] || mongo_q "$DBNAME" drop
    DBNAME=lpc_scale_$2
    URL="$MONGO_URL/$DBNAME" ;;
  esac
}

check_db() { # check_db BACKEND: prints "rows cards chunks"
  case $1 in
  postgres) psql_db "$DBNAME" -F ' ' -c "select (select count(*) from log_panel_log), (select coalesce(sum(total),0) from log_panel_log_card), (select count(*) from log_panel_log_message_chunk)" ;;
  mariadb) mysql_db "$DBNAME" -e "select (select count(*) from log_panel_log), (select coalesce(sum(total),0) from log_panel_log_card), (select count(*) from log_panel_log_message_chunk)" | tr '\t' ' ' ;;
  sqlite) echo "$(sqlite_q "$DBNAME" 'select count(*) from log_panel_log') $(sqlite_q "$DBNAME" 'select coalesce(sum(total),0) from log_panel_log_card') $(sqlite_q "$DBNAME" 'select count(*) from log_panel_log_message_chunk')" ;;
  mongo) mongo_q "$DBNAME" check ;;
  esac
}

n_for_size() { # the record counts for a message size
  if [ "$1" -le 1024 ]; then echo "$NS"; elif [ "$1" -le 65536 ]; then echo "$MID_N"; else echo "$BIG_N"; fi
}

# slices SAMPLES T0 N: the rate in each SLICE-row slice, from "time count" samples (linear between samples)
slices() {
  python3 - "$@" "$SLICE" <<'PY'
import sys
path, t0, n, size = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
pts = [(t0, 0)]
for line in open(path):
    t, c = line.split()
    pts.append((float(t), int(c)))
def when(k):  # first time the count reached k, interpolated
    for (ta, ca), (tb, cb) in zip(pts, pts[1:]):
        if cb >= k > ca or (cb >= k and ca >= k):
            return ta + (tb - ta) * (k - ca) / (cb - ca) if cb > ca else tb
    return None
out, prev = [], t0
for k in range(size, n + 1, size):
    t = when(k)
    if t is None:
        out.append("?"); continue
    out.append(f"{size / (t - prev):.0f}" if t > prev else "?")
    prev = t
print(" ".join(out))
PY
}

run_one() { # run_one BACKEND SIZE N CONC
  local backend=$1 size=$2 n=$3 conc=$4 runid=$RUN_SEQ
  RUN_SEQ=$((RUN_SEQ + 1))
  prepare "$backend" "$runid"
  local conf=$WORK/$backend.toml log=$OUT/daemon-$backend-$size-$n-c$conc.log
  {
    echo "[storage]"; echo "url = \"$URL\""
    echo "[syslog]"; echo 'tcp = ["127.0.0.1:0"]'; echo 'udp = []'
    echo "[otlp]"; echo 'grpc = ""'; echo 'http = ""'
    echo "[retention]"; echo "days = 0"
    echo "[service]"; echo 'metrics = "127.0.0.1:0"'
    [ -z "${EXTRA_TOML:-}" ] || printf '%b\n' "$EXTRA_TOML"
  } >"$conf"
  "$BIN" --config "$conf" migrate >"$WORK/migrate.out" 2>&1 || { cat "$WORK/migrate.out" >&2; die "migrate failed ($backend)"; }
  [ "$backend" != postgres ] || psql_db postgres -c checkpoint   # each run starts from a fresh checkpoint
  start_daemon "$conf" "$log"
  local port mport
  port=$(daemon_port "$log" "syslog tcp"); mport=$(daemon_port "$log" "metrics http")
  local batch=$((262144 / size)); [ "$batch" -ge 1 ] || batch=1   # about 256 KiB per TCP write
  local load; load=$(loadavg)
  local samples=$OUT/samples-$backend-$size-$n-c$conc.txt sampler=""
  : >"$samples"
  if [ "$n" -gt "$SLICE" ]; then
    (while :; do c=$(rows_written "$mport" 2>/dev/null) && echo "$(date +%s.%N) $c" >>"$samples"; sleep "$SAMPLE_S"; done) &
    sampler=$!; BG_PIDS+=("$sampler")
  fi
  local t0; t0=$(date +%s.%N)
  local line rc=0
  line=$(timeout $((MAX_RUN_S * 3)) "$BIN" bench --protocol tcp --endpoint "127.0.0.1:$port" \
        --metrics "http://127.0.0.1:$mport/metrics" --records "$n" --size "$size" --concurrency "$conc" \
        --batch "$batch" --wait "$((MAX_RUN_S * 2))s" 2>>"$OUT/bench-stderr.txt") || rc=$?
  if [ -n "$sampler" ]; then
    kill "$sampler" 2>/dev/null || true; wait "$sampler" 2>/dev/null || true
    # The last point: the bench saw the stored count reach N at stored_seconds after its first send.
    ss_=$(field stored_seconds "$line")
    [[ "$ss_" =~ ^[0-9.]+$ ]] && python3 -c "import sys; print(float(sys.argv[1]) + float(sys.argv[2]), sys.argv[3])" "$t0" "$ss_" "$(field stored "$line")" >>"$samples"
  fi
  stop_daemon
  [ "$rc" = 0 ] || note "bench exited with status $rc ($backend size=$size n=$n c=$conc)"
  echo "$line"
  local rate stored send_s
  rate=$(field stored_per_s "$line"); stored=$(field stored "$line"); send_s=$(field seconds "$line")
  local rows cards chunks verdict
  read -r rows cards chunks < <(check_db "$backend")
  if [ "$rows" = "$n" ] && [ "$cards" = "$rows" ] && [ "${stored:-}" = "$n" ]; then verdict=OK; else verdict=MISMATCH; FAILED=1; fi
  echo "check $backend size=$size n=$n c=$conc rows=$rows card_total=$cards chunks=$chunks bench_stored=${stored:-?} $verdict"
  grep -E 'WARN|ERROR' "$log" | head -3 || true
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$backend" "$size" "$n" "$conc" "$load" "${rate:-?}" \
    "${send_s:-?}" "$(mib "$HWM_KIB")" "$chunks" "$verdict" >>"$RESULTS"
  if [ -n "$sampler" ]; then
    local s; s=$(slices "$samples" "$t0" "$n")
    printf '%s\t%s\t%s\t%s\t%s\n' "$backend" "$size" "$n" "$conc" "$s" >>"$SLICES"
    echo "slices $backend size=$size n=$n c=$conc rows/s per $SLICE rows: $s"
  fi
  [ "$backend" != mongo ] || mongo_q "$DBNAME" drop
}

rate_of() { # rate_of BACKEND SIZE N CONC: stored_per_s of an earlier run, or nothing
  awk -F'\t' -v b="$1" -v s="$2" -v n="$3" -v c="$4" '$1==b && $2==s && $3==n && $4==c { print $6 }' "$RESULTS" | tail -1
}

label() { case $1 in postgres) echo "PostgreSQL $(psql_db postgres -c 'show server_version' | cut -d' ' -f1)" ;;
  mariadb) echo "MariaDB $(mysql_db -e 'select version()' | cut -d- -f1)" ;; sqlite) echo "SQLite (embedded default, spool on)" ;;
  mongo) echo "$MONGO_LABEL" ;; esac; }

echo "== bench-scale: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== binary: $BIN ($("$BIN" --version), modified $(date -u -r "$BIN" '+%Y-%m-%d %H:%M UTC'))"
if pgrep -x cargo >/dev/null || pgrep -x rustc >/dev/null; then
  echo "warning: cargo/rustc is running on this machine: the figures below will be noisy" >&2
fi

# --- scale ---------------------------------------------------------------------------------------------
RUN_SEQ=1
if has scale "$PARTS"; then
  has mongo "$BACKENDS" && mongo_setup
  for backend in $BACKENDS; do
    echo "== $(label "$backend")"
    for size in $SIZES; do
      ns=$(n_for_size "$size")
      first_n=${ns%% *}
      for n in $ns; do
        concs=$CONCS
        if [ "$n" != "$first_n" ]; then concs=$BIG_CONCS; [ "$backend" != mongo ] || concs=$MONGO_BIG_CONCS; fi
        for conc in $concs; do
          run_n=$n
          if [ "$n" != "$first_n" ]; then
            r=$(rate_of "$backend" "$size" "$first_n" "$conc")
            if [[ "${r:-}" =~ ^[0-9]+$ ]] && [ "$r" -gt 0 ] && [ $((n * 125 / 100 / r)) -gt "$MAX_RUN_S" ]; then
              run_n=$(( r * MAX_RUN_S * 100 / 125 / 100000 * 100000 ))
              note "$backend size=$size c=$conc: N=$n would take about $((n * 125 / 100 / r)) s at $r rows/s (> MAX_RUN_S=$MAX_RUN_S s): N=$run_n instead"
              [ "$run_n" -gt "$first_n" ] || { note "  ... not more than N=$first_n: skipped"; continue; }
            fi
          fi
          run_one "$backend" "$size" "$run_n" "$conc"
        done
      done
    done
  done
  [ -z "$MONGO_STARTED" ] || { MONGO_TEST_ROOT=$MONGO_ROOT MONGO_TEST_PORT=$MONGO_PORT "$REPO/scripts/mongo-test-server.sh" stop; MONGO_STARTED=""; }
fi

# --- idle: the embedded default -------------------------------------------------------------------------
IDLE_LINE=""
if has idle "$PARTS"; then
  d=$WORK/idle; mkdir -p "$d"
  : >"$OUT/daemon-idle.log"
  busy=$(ss -Htlnu | awk '{print $5}' | grep -E ':(5514|4317|4318|9598)$' || true)
  if [ -z "$busy" ]; then
    how="no config, in an empty dir"
    (cd "$d" && RUST_LOG=${RUST_LOG:-warn} exec "$BIN" run) 2>"$OUT/daemon-idle.log" &
    DAEMON_PID=$!
  else
    # The embedded default's ports are taken: the same settings, on free ports.
    how="embedded default's settings on free ports (default ports busy: $(echo $busy))"
    printf '[storage]\nurl = "sqlite://%s/log-panel.sqlite3"\n[syslog]\ntcp = ["127.0.0.1:0"]\nudp = ["127.0.0.1:0"]\n[otlp]\ngrpc = "127.0.0.1:0"\nhttp = "127.0.0.1:0"\n[service]\nmetrics = "127.0.0.1:0"\n' "$d" >"$d/idle.toml"
    (cd "$d" && RUST_LOG=${RUST_LOG:-warn} exec "$BIN" --config idle.toml run) 2>"$OUT/daemon-idle.log" &
    DAEMON_PID=$!
  fi
  daemon_port "$OUT/daemon-idle.log" "syslog tcp" >/dev/null
  sleep "$IDLE_S"
  idle_rss=$(status_kib "$DAEMON_PID" VmRSS)
  threads=$(sed -n 's/^Threads:[[:space:]]*//p' "/proc/$DAEMON_PID/status")
  stop_daemon
  verdict=$([ "$idle_rss" -le $((20 * 1024)) ] && echo "OK (<= 20 MiB)" || echo "OVER 20 MiB")
  IDLE_LINE="idle embedded default ($how): VmRSS after ${IDLE_S} s = $(mib "$idle_rss") MiB, VmHWM $(mib "$HWM_KIB") MiB, $threads threads: $verdict"
  echo "$IDLE_LINE"
fi

# --- overload: PostgreSQL stopped by a table lock, 10 x queue_bytes offered ------------------------------
OVERLOAD_LINES=()
if has overload "$PARTS"; then
  qbytes=$(python3 -c "import re,sys; m=re.fullmatch(r'(\d+)\s*(KiB|MiB|GiB)?', sys.argv[1]); print(int(m[1]) * {None:1,'KiB':1024,'MiB':1<<20,'GiB':1<<30}[m[2]])" "$OVERLOAD_QUEUE")
  for size in $OVERLOAD_SIZES; do
    DBNAME=lpc_scale_overload
    psql_db postgres -c "set client_min_messages = warning" -c "drop database if exists $DBNAME with (force)" -c "create database $DBNAME"
    conf=$WORK/overload.toml; log=$OUT/daemon-overload-$size.log
    printf '[storage]\nurl = "%s"\n[syslog]\ntcp = ["127.0.0.1:0"]\nudp = []\n%b[otlp]\ngrpc = "127.0.0.1:0"\nhttp = ""\n[batch]\nqueue_bytes = "%s"\n%b[spool]\ndir = ""\n[retention]\ndays = 0\n[service]\nmetrics = "127.0.0.1:0"\n' \
      "$PGURL_BASE/$DBNAME" "${OVERLOAD_PENDING:+max_pending_bytes = \"$OVERLOAD_PENDING\"\n}" "$OVERLOAD_QUEUE" "${OVERLOAD_BATCH:+$OVERLOAD_BATCH\n}" >"$conf"
    "$BIN" --config "$conf" migrate >"$WORK/migrate.out" 2>&1 || { cat "$WORK/migrate.out" >&2; die "migrate failed (overload)"; }
    start_daemon "$conf" "$log"
    port=$(daemon_port "$log" "syslog tcp"); gport=$(daemon_port "$log" "otlp grpc"); mport=$(daemon_port "$log" "metrics http")
    sleep 2
    base_rss=$(status_kib "$DAEMON_PID" VmRSS)
    load=$(loadavg)
    # 10 x queue_bytes of message text, shared between the protocols of OVERLOAD_PROTOCOLS.
    nproto=$(wc -w <<<"$OVERLOAD_PROTOCOLS")
    each=$((qbytes * 10 / nproto / size))
    psql_db "$DBNAME" -c "begin" -c "lock table log_panel_log in access exclusive mode" -c "select pg_sleep($LOCK_S)" -c "commit" >/dev/null &
    lock_pid=$!; BG_PIDS+=("$lock_pid")
    for _ in $(seq 1 100); do
      [ "$(psql_db "$DBNAME" -c "select count(*) from pg_locks l join pg_class c on c.oid = l.relation where c.relname = 'log_panel_log' and l.mode = 'AccessExclusiveLock' and l.granted")" = 1 ] && break
      sleep 0.1
    done
    wait_s=$((LOCK_S + 300))
    sender_pids=()
    for proto in $OVERLOAD_PROTOCOLS; do
      case $proto in
      tcp) args=(--endpoint "127.0.0.1:$port" --batch $((262144 / size))) ;;
      otlp-grpc) args=(--endpoint "http://127.0.0.1:$gport" --batch $((1048576 / size))) ;;
      *) die "OVERLOAD_PROTOCOLS: tcp or otlp-grpc, not $proto" ;;
      esac
      "$BIN" bench --protocol "$proto" "${args[@]}" --metrics "http://127.0.0.1:$mport/metrics" \
        --records "$each" --size "$size" --concurrency 4 --wait "${wait_s}s" \
        >"$WORK/over-$proto.txt" 2>>"$OUT/bench-stderr.txt" &
      sender_pids+=($!)
    done
    maxq=0
    while kill -0 "$lock_pid" 2>/dev/null; do
      q=$(curl -fsS --max-time 2 "http://127.0.0.1:$mport/metrics" | awk '/^log_panel_collector_queue_bytes[{ ]/ { s += $NF } END { printf "%d\n", s }') || q=0
      [ "$q" -le "$maxq" ] || maxq=$q
      sleep 0.5
    done
    wait "$lock_pid" || true
    hwm_locked=$(status_kib "$DAEMON_PID" VmHWM)
    rc=0; for p in "${sender_pids[@]}"; do wait "$p" || rc=$?; done
    [ "$rc" = 0 ] || note "overload: a bench exited non-zero ($rc)"
    stop_daemon
    for proto in $OVERLOAD_PROTOCOLS; do cat "$WORK/over-$proto.txt"; done
    rows=$(psql_db "$DBNAME" -c "select count(*) from log_panel_log")
    cards=$(psql_db "$DBNAME" -c "select coalesce(sum(total),0) from log_panel_log_card")
    if [ "$rows" = $((nproto * each)) ] && [ "$cards" = "$rows" ]; then verdict=OK; else verdict=MISMATCH; FAILED=1; fi
    l="overload size=$size${OVERLOAD_BATCH:+ ($OVERLOAD_BATCH)}${OVERLOAD_PENDING:+ (max_pending_bytes $OVERLOAD_PENDING)} queue_bytes=$(mib $((qbytes / 1024))) MiB offered=$(mib $((nproto * each * size / 1024))) MiB ($each records each over $OVERLOAD_PROTOCOLS) lock=${LOCK_S}s load=$load: idle RSS $(mib "$base_rss") MiB, queue_bytes metric max $(mib $((maxq / 1024))) MiB, VmHWM while locked $(mib "$hwm_locked") MiB, VmHWM at the end $(mib "$HWM_KIB") MiB = queue_bytes + $(mib $((HWM_KIB - qbytes / 1024))) MiB; otlp retries=$(field retries "$(cat "$WORK/over-otlp-grpc.txt" 2>/dev/null)"); rows=$rows card_total=$cards $verdict"
    echo "$l"; OVERLOAD_LINES+=("$l")
  done
fi

# --- summary ---------------------------------------------------------------------------------------------
if [ -s "$RESULTS" ]; then
  echo "== scaling (syslog TCP RFC 3164, bench stored_per_s; peak RSS = the daemon's VmHWM)"
  echo "| backend | size | N | senders | load at start | rows/s | send s | peak RSS MiB | chunks | check |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  while IFS=$'\t' read -r b s n c l r sec h ch v; do
    echo "| $b | $s | $n | $c | $l | $r | $sec | $h | $ch | $v |"
  done <"$RESULTS"
fi
if [ -s "$SLICES" ]; then
  echo "== rows/s per $SLICE-row slice as the table grows"
  while IFS=$'\t' read -r b s n c sl; do echo "| $b | $s | $n | $c | ${sl// / | } |"; done <"$SLICES"
fi
[ ! -s "$NOTES" ] || { echo "== notes"; cat "$NOTES"; }
[ -z "$IDLE_LINE" ] || echo "$IDLE_LINE"
for l in "${OVERLOAD_LINES[@]}"; do echo "$l"; done
[ -z "$FAILED" ] || die "a check failed (rows != sent, cards != rows, or a daemon's exit status): see above"
