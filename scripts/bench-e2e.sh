#!/usr/bin/env bash
# End-to-end ingest benchmark, side by side in ONE run, at the same N and message size, on this machine's
# PostgreSQL (127.0.0.1:5432, user postgres, trust):
#   copy       the database's own limit: one raw COPY of N rows       (BENCH_DIR/copy-limit.sh)
#   collector  target/release/log-panel-collector, syslog over TCP,   (BENCH_DIR/ingest-rate.sh)
#              RFC 3164 and then RFC 5424, each into a fresh panel database that the collector's own
#              `migrate` created; afterwards the card and timeline totals are checked against the rows
#   otlp       the collector fed by its own load generator (`log-panel-collector bench`): N records in
#              OTLP/gRPC Export requests of OTLP_BATCH (2000) records over OTLP_CONCURRENCY (4) connections
#   rsyslog    rsyslog + ompgsql, TCP, RFC 3164 (rows only, no cards)  (BENCH_DIR/rsyslog-pg.sh)
# then prints the ratios collector/COPY and collector/rsyslog. See docs/benchmarks.md.
#
# Usage: scripts/bench-e2e.sh [N]            (N defaults to 200000)
# Environment:
#   BENCH_DIR      the shared bench scripts (default: ../shared/bench beside this repository)
#   SIZE           message size in characters for every part (default 256)
#   COPY_MODES     the COPY limits to take, STREAMS:ORDERED (default "1:0 2:0 1:1 2:1"); ratios use the best
#   PARTS          which parts to run, default "copy collector otlp rsyslog"; "udp" adds the UDP loss run,
#                  "sqlite" the embedded default beside SQLite's own limit (SQLITE_SPOOLS="on off")
#   SQLITE_ROUNDS  rounds of the sqlite part (default 1): limit and collector alternate, medians reported
#   UDP_N, UDP_RATE  the udp part: datagrams offered (500000) at each rate in UDP_RATE (default 50000)
#   FORMATS        collector formats, default "rfc3164 rfc5424"
#   SENDERS        who sends the syslog messages, default "bench loggen": the collector's own `bench`
#                  (0.8 us of CPU a message here) and then syslog-ng's loggen (10 us a message, CPU that
#                  PostgreSQL or SQLite then lacks on 2 cores). Each sender's figure is printed beside COPY
#                  and rsyslog; the like-for-like ratio to rsyslog (fed by loggen) is loggen's, and the
#                  sqlite part uses the first sender
#   TCP_CONNECTIONS  connections of the bench sender (default 1, as loggen's)
#   MAX_RECORDS, MAX_DELAY_MS, WRITERS, QUEUE_BYTES
#                  written into the collector's [batch] section when set (else the defaults apply)
#   SPOOLS         run the OTLP part once per mode, e.g. "off always interval": spool off, or on with
#                  that [spool] sync (the spool in the work dir), and print each ratio to "off"; list
#                  the modes several times ("off always off always ...") to compare medians
#   CONTEXT=false  [storage] context = false (no context line appended to each message)
#   NO_BUILD=1     use the binary as it is, even when src/ is newer
#   BIN            the collector binary (default target/release/log-panel-collector)
#   MONITOR=1      sample top and pg_stat_activity every second during each collector run, into
#                  $MONITOR_DIR (default target/bench-e2e/), for finding where the time goes
#   SETTLE=0       skip the CHECKPOINT and sync issued before each timed part
#   LIMIT_S        give up on one part after this many seconds (default 300 + N/500)
#   PGURL_BASE     default postgres://postgres@127.0.0.1:5432 (also read by the shared scripts)
set -euo pipefail

die() { echo "bench-e2e: $*" >&2; exit 1; }

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
N=${1:-200000}
[[ "$N" =~ ^[1-9][0-9]*$ ]] || die "N must be a positive integer, got '$N'"
SIZE=${SIZE:-256}
PARTS=${PARTS:-copy collector otlp rsyslog}
FORMATS=${FORMATS:-rfc3164 rfc5424}
SENDERS=${SENDERS:-bench loggen}
LIMIT_S=${LIMIT_S:-$((300 + N / 500))}

BENCH_DIR=${BENCH_DIR:-$REPO/../shared/bench}
[ -d "$BENCH_DIR" ] || die "bench scripts not found: $BENCH_DIR does not exist (set BENCH_DIR to the folder holding lib.sh, copy-limit.sh, ingest-rate.sh, rsyslog-pg.sh)"
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
for f in lib.sh copy-limit.sh ingest-rate.sh rsyslog-pg.sh panel-schema.postgres.sql; do
  [ -r "$BENCH_DIR/$f" ] || die "$BENCH_DIR/$f is missing"
done
for tool in psql python3 cargo; do command -v "$tool" >/dev/null || die "$tool is missing"; done

# psql_db, PGURL_BASE, loggen setup (lib.sh sets BENCH_DIR to its own folder, i.e. the same one).
# shellcheck source=/dev/null
. "$BENCH_DIR/lib.sh"
pg_isready -q -h 127.0.0.1 -p 5432 || die "PostgreSQL is not reachable on 127.0.0.1:5432"

WORK=$(mktemp -d)
DAEMON_PID=""
MON_PID=""
cleanup() {
  [ -n "$MON_PID" ] && kill "$MON_PID" 2>/dev/null || true
  if [ -n "$DAEMON_PID" ]; then kill -TERM "$DAEMON_PID" 2>/dev/null || true; wait "$DAEMON_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

field() { sed -n "s/.*[[:space:]]$1=\([^[:space:]]*\).*/\1/p" <<<"$2" | tail -1; }
has_part() { [[ " $PARTS " == *" $1 "* ]]; }

echo "== bench-e2e: N=$N SIZE=$SIZE  machine: $(nproc) cores, $(psql_db postgres -c 'show server_version' | cut -d' ' -f1) PostgreSQL, load $(cut -d' ' -f1-3 /proc/loadavg)"

if pgrep -x cargo >/dev/null || pgrep -x rustc >/dev/null; then
  echo "warning: cargo/rustc is running on this machine: the figures below will be noisy" >&2
fi

# loggen is fetched on first use inside ingest-rate.sh's timed section: fetch it now, untimed.
sng_root >/dev/null || die "could not install loggen (syslog-ng) into the cache"

declare -A RATE RUNS
# CPU accounting, for "where the time goes": ticks (1/CLK_TCK s) used by one process, and by all of
# PostgreSQL (every live postgres process plus what the postmaster's exited children, the backends of
# finished sessions, used). A part's CPU per row = its tick delta / rows; printed as cpu_us_per_row.
TICK_US=$((1000000 / $(getconf CLK_TCK)))
proc_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
pg_ticks() {
  local pm t=0 p
  pm=$(pgrep -o -x postgres) || { echo 0; return; }
  t=$(awk '{ print $16 + $17 }' "/proc/$pm/stat")
  for p in $(pgrep -x postgres); do t=$((t + $(proc_ticks "$p"))); done
  echo "$t"
}
# The whole machine's CPU ticks (/proc/stat "cpu": user nice system idle iowait irq softirq steal):
# busy (user nice system irq softirq), idle, iowait, steal (taken by the hypervisor for other guests).
stat_now() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $5, $6, $9 }' /proc/stat; }
cpu_line() { # cpu_line NAME ROWS PG_T0 [COLLECTOR_TICKS]: prints cpu_us_per_row for PostgreSQL and the collector,
  # and how the machine's cores were spent since `st0` (busy, idle, waiting for I/O): idle cores during a
  # run mean its rate was set by something other than CPU.
  local pg=$(( ($(pg_ticks) - $3) * TICK_US ))
  python3 -c "import sys; n=max(int(sys.argv[2]),1); print(f'cpu {sys.argv[1]} rows={n} postgres_us_per_row={int(sys.argv[3])/n:.1f}' + (f' collector_us_per_row={int(sys.argv[4])/n:.1f}' if sys.argv[4] else ''))" \
    "$1" "$2" "$pg" "${4:+$(( $4 * TICK_US ))}"
  machine_line "$1"
}
machine_line() { # machine_line NAME: how the machine's cores were spent since `st0`
  python3 -c "import sys; a=list(map(int, sys.argv[1].split())); b=list(map(int, sys.argv[2].split())); d=[y-x for x, y in zip(a, b)]; t=max(sum(d),1); print(f'machine {sys.argv[3]} busy={100*d[0]/t:.0f}% idle={100*d[1]/t:.0f}% iowait={100*d[2]/t:.0f}% steal={100*d[3]/t:.0f}%')" \
    "$st0" "$(stat_now)" "$1"
}
# median X...: the middle value (a mode listed several times in SPOOLS runs several times, alternating)
median() { python3 -c 'import statistics,sys; print(round(statistics.median(map(float, sys.argv[1:]))))' "$@"; }

# Every part writes a few hundred MB of WAL, enough to request a checkpoint that then runs spread over the
# next parts. Start each timed part from a fresh checkpoint instead, and with the kernel's dirty pages
# (the last part's SQLite files included) written back (SETTLE=0 skips both).
settle() { [ "${SETTLE:-1}" = 0 ] || { psql_db postgres -c checkpoint >/dev/null; sync; }; }

# --- (a) the database's own limit -------------------------------------------------------------------
# Each of COPY_MODES (STREAMS:ORDERED, default all four: 1 or 2 streams, random or time-ordered ids);
# the best is the limit the collector is compared with (the collector writes time-ordered ids with two
# writers, so "2:1" is its fair peer).
if has_part copy; then
  for mode in ${COPY_MODES:-1:0 2:0 1:1 2:1}; do
    settle
    pg0=$(pg_ticks); st0=$(stat_now)
    line=$(STREAMS=${mode%%:*} ORDERED=${mode##*:} timeout "$LIMIT_S" "$BENCH_DIR/copy-limit.sh" "$N" "$SIZE") ||
      die "copy-limit.sh failed or exceeded ${LIMIT_S}s"
    echo "$line"
    cpu_line "copy_$mode" "$N" "$pg0"   # includes the fresh schema's creation and the final count
    r=$(field rows_per_s "$line")
    RATE[copy_$mode]=$r
    if [ -z "${RATE[copy]:-}" ] || [ "$r" -gt "${RATE[copy]}" ]; then RATE[copy]=$r; RATE[copy_best]=$mode; fi
  done
fi

# --- (b) the collector ------------------------------------------------------------------------------
BIN=${BIN:-$REPO/target/release/log-panel-collector}
stop_daemon() {
  [ -n "$MON_PID" ] && { kill "$MON_PID" 2>/dev/null || true; wait "$MON_PID" 2>/dev/null || true; MON_PID=""; }
  [ -n "$DAEMON_PID" ] || return 0
  kill -TERM "$DAEMON_PID" 2>/dev/null || true
  wait "$DAEMON_PID" 2>/dev/null || true
  DAEMON_PID=""
}

daemon_port() { # daemon_port "syslog tcp": the port the running daemon reports in $LOG for that listener
  local port=""
  for _ in $(seq 1 100); do
    port=$(sed -n "s/^listening on $1 [^ ]*:\([0-9]*\)\( .*\)\{0,1\}\$/\1/p" "$LOG" | head -1)
    [ -n "$port" ] && { echo "$port"; return 0; }
    kill -0 "$DAEMON_PID" 2>/dev/null || { cat "$LOG" >&2; die "the collector exited at start"; }
    sleep 0.1
  done
  cat "$LOG" >&2; die "the collector did not report its $1 port"
}

monitor() { # monitor OUTFILE: top and the collector's sessions, once a second, until killed
  while :; do
    {
      echo "--- $(date +%T.%N | cut -c1-12)"
      top -b -n1 -w 200 | sed -n '1,3p;7,14p'
      psql_db postgres -F ' | ' -c "select pid, state, coalesce(wait_event_type,'-'), coalesce(wait_event,'-'), left(regexp_replace(query, '\s+', ' ', 'g'), 60) from pg_stat_activity where application_name = 'log-panel-collector' order by pid" 2>/dev/null
    } >>"$1"
    sleep 1
  done
}

# send_tcp SENDER FMT PORT MPORT: N syslog messages of FMT over TCP to the collector on PORT, then the wait
# until they are stored; prints "ingest tcp FMT sent= stored= lost= send_s= total_s= rows_per_s=".
#   bench   the collector's own load generator (`bench --protocol tcp`, one connection, 1000 messages a
#           write); it polls the daemon's /metrics on MPORT for the stored count, every 50 ms
#   loggen  syslog-ng's loggen through BENCH_DIR/ingest-rate.sh, which polls count(*) every 100 ms
#   loggen-metrics  loggen, then the daemon's /metrics polled every 100 ms (the sqlite part's loggen)
send_tcp() {
  case $1 in
    bench)
      local out
      out=$(timeout "$LIMIT_S" "$BIN" bench --protocol tcp --endpoint "127.0.0.1:$3" --records "$N" --size "$SIZE" \
              --format "$2" --concurrency "${TCP_CONNECTIONS:-1}" --batch 1000 \
              --metrics "http://127.0.0.1:$4/metrics" --wait "$((LIMIT_S / 2))s" 2>"$WORK/bench.err") ||
        { cat "$WORK/bench.err" >&2; return 1; }
      python3 -c "import sys; s=int(sys.argv[2]); print(f'ingest tcp $2 sent=$N stored={s} lost={$N-s} send_s={float(sys.argv[1]):.2f} total_s={float(sys.argv[3]):.2f} rows_per_s={s/float(sys.argv[3]):.0f}')" \
        "$(field seconds "$out")" "$(field stored "$out")" "$(field stored_seconds "$out")" ;;
    # timeout signals its whole process group, loggen included (loggen spins forever on a refused port).
    loggen) timeout "$LIMIT_S" "$BENCH_DIR/ingest-rate.sh" "$DB" "$3" "$N" tcp "$2" "$SIZE" ;;
    loggen-metrics)
      local t0 t1 c last=-1 same=0 flags="-i -Q -s $SIZE -n $N -S -r 100000000"
      [ "$2" = rfc5424 ] && flags="$flags -P"
      t0=$(date +%s.%N)
      timeout "$LIMIT_S" $(loggen_cmd) $flags 127.0.0.1 "$3" >/dev/null 2>"$WORK/loggen.err" ||
        { tail -3 "$WORK/loggen.err" >&2; return 1; }
      t1=$(date +%s.%N)
      while :; do
        # The daemon's own count: polling count(*) with the sqlite3 CLI took CPU from the writer.
        c=$(curl -fsS "http://127.0.0.1:$4/metrics" | sed -n 's/^log_panel_collector_rows_written_total{[^}]*} \([0-9]*\)$/\1/p')
        c=${c:-0}
        [ "$c" -ge "$N" ] && break
        if [ "$c" = "$last" ]; then same=$((same+1)); [ $same -ge 50 ] && break; else same=0; fi
        last=$c; sleep 0.1
      done
      python3 -c "import sys; t0, t1, t2 = map(float, sys.argv[1:]); print(f'ingest tcp $2 sent=$N stored=$c lost={$N-$c} send_s={t1-t0:.2f} total_s={t2-t0:.2f} rows_per_s={$c/(t2-t0):.0f}')" \
        "$t0" "$t1" "$(date +%s.%N)" ;;
    *) die "unknown sender '$1' in SENDERS (bench or loggen)" ;;
  esac
}

if has_part collector; then
  if [ ! -x "$BIN" ]; then
    echo "== $BIN is missing: cargo build --release"
    (cd "$REPO" && cargo build --release -q) || die "cargo build --release failed"
  elif [ "${NO_BUILD:-0}" != 1 ] && [ -n "$(cd "$REPO" && find src migrations Cargo.toml Cargo.lock -newer "$BIN" -print -quit)" ]; then
    echo "== $BIN is older than the sources: cargo build --release"
    (cd "$REPO" && cargo build --release -q) || die "cargo build --release failed"
  fi
  DB=bench_collector
  CONF=$WORK/collector.toml
  {
    echo "[storage]"
    echo "url = \"$PGURL_BASE/$DB\""
    [ -n "${CONTEXT:-}" ] && echo "context = $CONTEXT"
    echo "[syslog]"
    echo "tcp = [\"127.0.0.1:0\"]"
    echo "udp = []"
    echo "[batch]"
    [ -n "${MAX_RECORDS:-}" ] && echo "max_records = $MAX_RECORDS"
    [ -n "${MAX_DELAY_MS:-}" ] && echo "max_delay_ms = $MAX_DELAY_MS"
    [ -n "${WRITERS:-}" ] && echo "writers = $WRITERS"
    [ -n "${QUEUE_BYTES:-}" ] && echo "queue_bytes = $QUEUE_BYTES"
    true
  } >"$CONF"
  # Only the syslog TCP listener: OTLP listeners off (their default ports may be taken), retention off.
  # A binary older than [otlp] or [retention] rejects that section: then it is left out.
  for section in '[otlp]\ngrpc = ""\nhttp = ""' '[retention]\ndays = 0' '[service]\nmetrics = "127.0.0.1:0"'; do
    cp "$CONF" "$CONF.prev"
    printf "$section\n" >>"$CONF"
    "$BIN" --config "$CONF" validate >/dev/null 2>&1 || mv "$CONF.prev" "$CONF"
  done
  "$BIN" --config "$CONF" validate >/dev/null || die "the generated config is invalid: $(cat "$CONF")"
  batch_keys=$(grep -E '^(max_records|max_delay_ms|writers|queue_bytes|context)' "$CONF" | paste -sd' ' - || true)
  echo "== collector settings: ${batch_keys:-defaults (max_records=5000 max_delay_ms=200 writers=2)}"

  for sender in $SENDERS; do
  for fmt in $FORMATS; do
    # A fresh database per format, so each figure is "N rows into an empty schema", like COPY's.
    psql_db postgres -c "set client_min_messages = warning" -c "drop database if exists $DB with (force)" -c "create database $DB" >/dev/null
    "$BIN" --config "$CONF" migrate >"$WORK/migrate.out" 2>&1 || { cat "$WORK/migrate.out" >&2; die "migrate failed"; }
    LOG=$WORK/collector-$fmt.log
    : >"$LOG"   # truncated here, not in the child: daemon_port must not read the last run's log
    RUST_LOG=${RUST_LOG:-warn} "$BIN" --config "$CONF" run 2>"$LOG" &
    DAEMON_PID=$!
    PORT=$(daemon_port "syslog tcp")
    MPORT=$(daemon_port "metrics http")
    settle
    if [ "${MONITOR:-0}" = 1 ]; then
      MONITOR_DIR=${MONITOR_DIR:-$REPO/target/bench-e2e}
      mkdir -p "$MONITOR_DIR"
      : >"$MONITOR_DIR/monitor-$fmt-$sender.txt"
      monitor "$MONITOR_DIR/monitor-$fmt-$sender.txt" &
      MON_PID=$!
    fi
    pg0=$(pg_ticks); st0=$(stat_now)
    # The sender's CPU (and, for loggen, the row-count polling): on 2 cores it is taken from PostgreSQL.
    TIMEFORMAT='%3U %3S'
    { time send_tcp "$sender" "$fmt" "$PORT" "$MPORT" >"$WORK/ingest.out"; } 2>"$WORK/ingest.time" ||
      { tail -20 "$LOG" >&2; die "collector $fmt run ($sender) failed or exceeded ${LIMIT_S}s"; }
    line=$(sed "s/^ingest/collector/; s/\$/ sender=$sender/" "$WORK/ingest.out")
    echo "$line"
    cpu_line "collector_${fmt}_$sender" "$N" "$pg0" "$(proc_ticks "$DAEMON_PID")"
    read -r su ss <"$WORK/ingest.time"
    python3 -c "print(f'cpu sender_${fmt}_$sender rows=$N sender_us_per_row={($su+$ss)*1e6/$N:.1f}')"
    RATE[collector_${fmt}_$sender]=$(field rows_per_s "$line")
    stop_daemon
    grep -E 'WARN|ERROR' "$LOG" | head -5 || true
    # Cards and timelines are written in the same transaction as their rows: they must add up.
    read -r rows cards hours days < <(psql_db "$DB" -F ' ' -c "select (select count(*) from log_panel_log), (select coalesce(sum(total),0) from log_panel_log_card), (select coalesce(sum(log_count),0) from log_panel_log_timeline_bucket where unit='hour'), (select coalesce(sum(log_count),0) from log_panel_log_timeline_bucket where unit='day')")
    if [ "$rows" = "$N" ] && [ "$rows" = "$cards" ] && [ "$rows" = "$hours" ] && [ "$rows" = "$days" ]; then verdict=OK; else verdict=MISMATCH; CHECK_FAILED=1; fi
    echo "collector_check $fmt sender=$sender rows=$rows card_total=$cards hour_buckets=$hours day_buckets=$days $verdict"
  done
  done
fi

# --- (b2) the collector over OTLP/gRPC, fed by its own load generator --------------------------------
# Once per SPOOLS mode (default "off"): off = [spool] dir = "", or a sync policy (always, interval, never)
# with the spool in $WORK, so the spool's cost is measured side by side in the same run.
if has_part otlp; then
  [ -x "$BIN" ] || (cd "$REPO" && cargo build --release -q) || die "cargo build --release failed"
  DB=bench_collector
  OCONF=$WORK/otlp.toml
  for spool in ${SPOOLS:-off}; do
  if [ "$spool" = off ]; then spool_toml='[spool]\ndir = ""\n'; else
    rm -rf "$WORK/spool"; spool_toml="[spool]\ndir = \"$WORK/spool\"\nsync = \"$spool\"\n"; fi
  printf "[storage]\nurl = \"%s\"\n[syslog]\ntcp = []\nudp = []\n[otlp]\ngrpc = \"127.0.0.1:0\"\nhttp = \"\"\n[retention]\ndays = 0\n[service]\nmetrics = \"127.0.0.1:0\"\n$spool_toml" \
    "$PGURL_BASE/$DB" >"$OCONF"
  [ -n "${SPOOLS:-}" ] || sed -i '/^\[spool\]/,$d' "$OCONF"   # a binary older than [spool] runs too
  psql_db postgres -c "set client_min_messages = warning" -c "drop database if exists $DB with (force)" -c "create database $DB" >/dev/null
  "$BIN" --config "$OCONF" migrate >"$WORK/migrate.out" 2>&1 || { cat "$WORK/migrate.out" >&2; die "migrate failed"; }
  LOG=$WORK/collector-otlp.log
  : >"$LOG"   # truncated here, not in the child: daemon_port must not read the last run's log
  RUST_LOG=${RUST_LOG:-warn} "$BIN" --config "$OCONF" run 2>"$LOG" &
  DAEMON_PID=$!
  PORT=$(daemon_port "otlp grpc")
  MPORT=$(daemon_port "metrics http")
  settle
  T0=$(date +%s.%N); pg0=$(pg_ticks); st0=$(stat_now)
  # The bench's line reports the accepted rate and, from the daemon's /metrics, the stored rate;
  # the table below uses this script's own count of rows.
  gen=$(timeout "$LIMIT_S" "$BIN" bench --endpoint "http://127.0.0.1:$PORT" --records "$N" \
        --batch "${OTLP_BATCH:-2000}" --size "$SIZE" --concurrency "${OTLP_CONCURRENCY:-4}" \
        --metrics "http://127.0.0.1:$MPORT/metrics" --wait "$((LIMIT_S / 2))s") || die "the load generator failed"
  SEND_S=$(field seconds "$gen")   # the bench now waits for the stored count too: its own send time
  c=$(wait_rows "$DB" "$N")
  T2=$(date +%s.%N)
  echo "$gen"
  line=$(python3 -c "print(f'collector_otlp grpc spool=$spool sent=$N stored={$c} lost={$N-$c} send_s={$SEND_S:.2f} total_s={$T2-$T0:.2f} rows_per_s={$c/($T2-$T0):.0f}')")
  echo "$line"
  cpu_line "collector_otlp_$spool" "$N" "$pg0" "$(proc_ticks "$DAEMON_PID")"
  RUNS[otlp_$spool]="${RUNS[otlp_$spool]:-} $(field rows_per_s "$line")"
  RATE[collector_otlp_$spool]=$(median ${RUNS[otlp_$spool]})
  spools=${SPOOLS:-off}; [ "$spool" != "${spools%% *}" ] || RATE[collector_otlp]=${RATE[collector_otlp_$spool]}
  stop_daemon
  read -r rows cards < <(psql_db "$DB" -F ' ' -c "select (select count(*) from log_panel_log), (select coalesce(sum(total),0) from log_panel_log_card)")
  if [ "$rows" = "$cards" ] && [ "$rows" = "$N" ]; then verdict=OK; else verdict=MISMATCH; CHECK_FAILED=1; fi
  echo "collector_check otlp spool=$spool rows=$rows card_total=$cards $verdict"
  done
fi

# --- (b3) the collector over UDP at a fixed rate: what is lost, and where ------------------------------
# loggen offers UDP_N (500000) RFC 3164 datagrams at UDP_RATE (50000/s, several rates: "50000 100000").
# The loss is sent - rows; the daemon's metrics must account for it exactly: udp_dropped_records (queue
# full) + udp_kernel_dropped_datagrams (the socket's buffer overflowed, the kernel's own counter).
if has_part udp; then
  [ -x "$BIN" ] || (cd "$REPO" && cargo build --release -q) || die "cargo build --release failed"
  DB=bench_collector
  UCONF=$WORK/udp.toml
  UDP_N=${UDP_N:-500000}
  for rate in ${UDP_RATE:-50000}; do
  printf '[storage]\nurl = "%s"\n[syslog]\ntcp = []\nudp = ["127.0.0.1:0"]\n[otlp]\ngrpc = ""\nhttp = ""\n[retention]\ndays = 0\n[service]\nmetrics = "127.0.0.1:0"\n' \
    "$PGURL_BASE/$DB" >"$UCONF"
  psql_db postgres -c "set client_min_messages = warning" -c "drop database if exists $DB with (force)" -c "create database $DB" >/dev/null
  "$BIN" --config "$UCONF" migrate >"$WORK/migrate.out" 2>&1 || { cat "$WORK/migrate.out" >&2; die "migrate failed"; }
  LOG=$WORK/collector-udp.log
  : >"$LOG"   # truncated here, not in the child: daemon_port must not read the last run's log
  RUST_LOG=${RUST_LOG:-warn} "$BIN" --config "$UCONF" run 2>"$LOG" &
  DAEMON_PID=$!
  PORT=$(daemon_port "syslog udp")
  MPORT=$(daemon_port "metrics http")
  settle
  rcvbuf_before=$(awk '/^Udp:/ { if (h) print $6; h=1 }' /proc/net/snmp)
  line=$(UDP_RATE=$rate STALL_S=5 timeout "$LIMIT_S" "$BENCH_DIR/ingest-rate.sh" "$DB" "$PORT" "$UDP_N" udp rfc3164 "$SIZE" | sed 's/^ingest/collector/') ||
    { tail -20 "$LOG" >&2; die "collector udp run failed or exceeded ${LIMIT_S}s"; }
  rcvbuf_after=$(awk '/^Udp:/ { if (h) print $6; h=1 }' /proc/net/snmp)
  sleep 1.5   # the reader reads the kernel's drop counter back once a second
  metrics=$(curl -fsS "http://127.0.0.1:$MPORT/metrics") || die "cannot read the collector's metrics"
  metric() { sed -n "s/^log_panel_collector_$1_total{[^}]*} \([0-9]*\)\$/\1/p" <<<"$metrics" | head -1; }
  qdrop=$(metric udp_dropped_records); kdrop=$(metric udp_kernel_dropped_datagrams)
  stop_daemon
  echo "$line"
  stored=$(field stored "$line"); lost=$(field lost "$line")
  if [ "$lost" = "$(( ${qdrop:-0} + ${kdrop:-0} ))" ]; then verdict=OK; else verdict=MISMATCH; CHECK_FAILED=1; fi
  echo "collector_udp_check rate=$rate sent=$UDP_N stored=$stored lost=$lost queue_dropped=${qdrop:-?} kernel_dropped=${kdrop:-?} kernel_RcvbufErrors_delta=$((rcvbuf_after - rcvbuf_before)) $verdict"
  RATE[udp_lost_$rate]=$lost
  done
fi

# --- (b4) SQLite, the embedded default, beside SQLite's own limit ------------------------------------
# The limit: scripts/sqlite-limit.py, prepared inserts of N rows in transactions of 5000 (WAL,
# synchronous=NORMAL, as the collector) into a file the collector migrated. Then the collector with
# the embedded default's settings (spool on, beside the database) over syslog TCP (RFC 3164, sent by the
# first of SENDERS).
# SQLITE_SPOOLS="on off" also runs it with the spool off. SQLITE_ROUNDS=K repeats limit and collector K
# times, alternating, and reports medians: the ratio is the median of each round's own ratio.
sqlite_rows() { python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()[0])' "$@"; }
if has_part sqlite; then
  [ -x "$BIN" ] || (cd "$REPO" && cargo build --release -q) || die "cargo build --release failed"
  SCONF=$WORK/sqlite.toml
  [[ ${SQLITE_ROUNDS:-1} =~ ^[1-9][0-9]*$ ]] || die "SQLITE_ROUNDS must be a whole number of at least 1 (got ${SQLITE_ROUNDS})"
  for _ in $(seq 1 "${SQLITE_ROUNDS:-1}"); do
  printf '[storage]\nurl = "sqlite://%s"\n' "$WORK/limit.sqlite3" >"$SCONF"
  "$BIN" --config "$SCONF" migrate >"$WORK/migrate.out" 2>&1 || { cat "$WORK/migrate.out" >&2; die "migrate failed"; }
  settle
  line=$(timeout "$LIMIT_S" python3 "$REPO/scripts/sqlite-limit.py" "$WORK/limit.sqlite3" "$N" "$SIZE" 5000) || die "sqlite-limit.py failed"
  echo "$line"
  limit_rate=$(field rows_per_s "$line")
  RUNS[sqlite_limit]="${RUNS[sqlite_limit]:-} $limit_rate"
  rm -f "$WORK"/limit.sqlite3*
  for sp in ${SQLITE_SPOOLS:-on}; do
    DBF=$WORK/collector.sqlite3
    rm -rf "$DBF" "$DBF"-wal "$DBF"-shm "$WORK/collector.spool"
    spool_line=""; [ "$sp" = off ] && spool_line='[spool]\ndir = ""\n'
    printf "[storage]\nurl = \"sqlite://%s\"\n[syslog]\ntcp = [\"127.0.0.1:0\"]\nudp = []\n[otlp]\ngrpc = \"\"\nhttp = \"\"\n[retention]\ndays = 0\n[service]\nmetrics = \"127.0.0.1:0\"\n$spool_line" "$DBF" >"$SCONF"
    "$BIN" --config "$SCONF" migrate >"$WORK/migrate.out" 2>&1 || { cat "$WORK/migrate.out" >&2; die "migrate failed"; }
    settle
    LOG=$WORK/collector-sqlite.log
    : >"$LOG"   # truncated here, not in the child: daemon_port must not read the last run's log
    RUST_LOG=${RUST_LOG:-warn} "$BIN" --config "$SCONF" run 2>"$LOG" &
    DAEMON_PID=$!
    PORT=$(daemon_port "syslog tcp")
    MPORT=$(daemon_port "metrics http")
    sender=${SENDERS%% *}
    st0=$(stat_now)
    # loggen's PostgreSQL wait (count(*) in ingest-rate.sh) cannot read SQLite: wait on /metrics instead.
    out=$(send_tcp "${sender/#loggen/loggen-metrics}" rfc3164 "$PORT" "$MPORT") || die "the $sender sender failed"
    send_s=$(field send_s "$out"); total_s=$(field total_s "$out")
    machine_line "collector_sqlite_$sp"
    stop_daemon
    c=$(sqlite_rows "$DBF" "select count(*) from log_panel_log")
    line=$(python3 -c "print(f'collector_sqlite tcp rfc3164 spool=$sp sender=$sender sent=$N stored={$c} lost={$N-$c} send_s=$send_s total_s=$total_s rows_per_s={$c/$total_s:.0f}')")
    echo "$line"
    rate=$(field rows_per_s "$line")
    RUNS[sqlite_$sp]="${RUNS[sqlite_$sp]:-} $rate"
    RUNS[sqlite_ratio_$sp]="${RUNS[sqlite_ratio_$sp]:-} $(python3 -c "print(f'{$rate / $limit_rate:.2f}')")"
    cards=$(sqlite_rows "$DBF" "select coalesce(sum(total),0) from log_panel_log_card")
    hours=$(sqlite_rows "$DBF" "select coalesce(sum(log_count),0) from log_panel_log_timeline_bucket where unit='hour'")
    if [ "$c" = "$cards" ] && [ "$c" = "$hours" ] && [ "$c" = "$N" ]; then verdict=OK; else verdict=MISMATCH; CHECK_FAILED=1; fi
    echo "collector_check sqlite spool=$sp rows=$c card_total=$cards hour_buckets=$hours $verdict"
    [ "$verdict" = OK ] || { echo "-- the collector's log:"; tail -20 "$LOG"; cat "$WORK/loggen.err" 2>/dev/null | tail -5; } >&2
  done
  done
  # Each figure the median of its rounds; each ratio the median of the rounds' own ratios.
  RATE[sqlite_limit]=$(median ${RUNS[sqlite_limit]})
  for sp in ${SQLITE_SPOOLS:-on}; do
    RATE[collector_sqlite_$sp]=$(median ${RUNS[sqlite_$sp]})
    RATE[sqlite_ratio_$sp]=$(python3 -c 'import statistics,sys; print(f"{statistics.median(map(float, sys.argv[1:])):.2f}")' ${RUNS[sqlite_ratio_$sp]})
  done
fi

# --- (c) the classic peer ---------------------------------------------------------------------------
if has_part rsyslog; then
  settle
  line=$(timeout "$LIMIT_S" "$BENCH_DIR/rsyslog-pg.sh" "$N" tcp rfc3164) || die "rsyslog-pg.sh failed or exceeded ${LIMIT_S}s"
  echo "$line"
  RATE[rsyslog]=$(field rows_per_s "$line")
fi

# --- summary ----------------------------------------------------------------------------------------
echo "== summary (rows/s, N=$N, SIZE=$SIZE)"
for mode in ${COPY_MODES:-1:0 2:0 1:1 2:1}; do
  [ -n "${RATE[copy_$mode]:-}" ] && printf '  %-20s %8s\n' "copy streams=${mode%%:*} ordered=${mode##*:}" "${RATE[copy_$mode]}"
done
[ -n "${RATE[copy]:-}" ] && echo "  copy = the best of these (streams:ordered ${RATE[copy_best]})"
for k in copy $(for f in $FORMATS; do for s in $SENDERS; do echo "collector_${f}_$s"; done; done) collector_otlp rsyslog; do
  [ -n "${RATE[$k]:-}" ] && printf '  %-28s %8s\n' "$k" "${RATE[$k]}"
done
for rate in ${UDP_RATE:-}; do
  [ -n "${RATE[udp_lost_$rate]:-}" ] && printf '  %-36s %s of %s\n' "udp lost at $rate/s" "${RATE[udp_lost_$rate]}" "${UDP_N:-500000}"
done
ratio() { # ratio NAME NUM DEN
  [ -n "${2:-}" ] && [ -n "${3:-}" ] && python3 -c "print(f'  %-36s %.2fx' % ('$1', $2 / $3))"
  return 0
}
# Each sender's figure beside COPY (which has no sender) and beside rsyslog (fed by loggen, as
# rsyslog-pg.sh does): the like-for-like ratio to rsyslog is the loggen one.
for fmt in $FORMATS; do
  for sender in $SENDERS; do
    ratio "collector_${fmt}_$sender / copy" "${RATE[collector_${fmt}_$sender]:-}" "${RATE[copy]:-}"
    ratio "collector_${fmt}_$sender / rsyslog_rfc3164_loggen" "${RATE[collector_${fmt}_$sender]:-}" "${RATE[rsyslog]:-}"
  done
done
ratio "collector_otlp / copy" "${RATE[collector_otlp]:-}" "${RATE[copy]:-}"
for spool in $(printf '%s\n' ${SPOOLS:-} | awk '!seen[$0]++'); do
  printf '  %-20s %8s   (median of:%s)\n' "collector_otlp_$spool" "${RATE[collector_otlp_$spool]:-}" "${RUNS[otlp_$spool]:-}"
  [ "$spool" = off ] && continue
  ratio "otlp spool=$spool / spool off" "${RATE[collector_otlp_$spool]:-}" "${RATE[collector_otlp_off]:-}"
done
[ -n "${RATE[sqlite_limit]:-}" ] && printf '  %-20s %8s   (median of:%s)\n' sqlite_limit "${RATE[sqlite_limit]}" "${RUNS[sqlite_limit]}"
for sp in ${SQLITE_SPOOLS:-on}; do
  [ -n "${RATE[collector_sqlite_$sp]:-}" ] || continue
  printf '  %-20s %8s   (median of:%s)\n' "collector_sqlite spool=$sp" "${RATE[collector_sqlite_$sp]}" "${RUNS[sqlite_$sp]}"
  printf '  %-36s %sx   (median of the rounds:%s)\n' "collector_sqlite spool=$sp / sqlite_limit" "${RATE[sqlite_ratio_$sp]}" "${RUNS[sqlite_ratio_$sp]}"
done
[ -z "${CHECK_FAILED:-}" ] || die "card or timeline totals do not match the row count (see collector_check above)"
