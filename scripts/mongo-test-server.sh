#!/usr/bin/env bash
# Start/stop the MongoDB-wire-compatible test server (nx-27017 from PyPI, SQLite-backed) that the MongoDB
# backend tests run against: no genuine mongod can be installed on these machines (see docs/mongodb.md).
# usage: mongo-test-server.sh start|stop|status
set -euo pipefail
ROOT=${MONGO_TEST_ROOT:-${TMPDIR:-/tmp}/lpc-mongo-test}
PORT=${MONGO_TEST_PORT:-27017}
VENV=$ROOT/venv
DATA=$ROOT/data
PIDFILE=$ROOT/server.pid
LOG=$ROOT/server.log
case "${1:-}" in
start)
  mkdir -p "$ROOT"
  if [ ! -x "$VENV/bin/nx-27017" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q 'nx-27017==0.8.1' 'neosqlite==1.17.2'
  fi
  rm -rf "$DATA"; mkdir -p "$DATA"
  "$VENV/bin/nx-27017" --data-dir "$DATA" --host 127.0.0.1 --port "$PORT" \
      --log-file "$LOG" --pid-file "$ROOT/nx.pid" >>"$LOG" 2>&1 &
  echo $! > "$PIDFILE"
  for _ in $(seq 1 100); do   # wait up to ~20 s for a real ping
    if "$VENV/bin/python" - "$PORT" <<'PY' 2>/dev/null; then
import sys
from pymongo import MongoClient
MongoClient(f"mongodb://127.0.0.1:{sys.argv[1]}/", serverSelectionTimeoutMS=200).admin.command("ping")
PY
      echo "mongo test server ready on 127.0.0.1:$PORT (pid $(cat "$PIDFILE"))"; exit 0
    fi
    kill -0 "$(cat "$PIDFILE")" 2>/dev/null || { echo "server died"; tail -20 "$LOG"; exit 1; }
    sleep 0.2
  done
  echo "server not ready"; tail -20 "$LOG"; exit 1 ;;
stop)
  if [ -f "$PIDFILE" ]; then
    PID=$(cat "$PIDFILE")
    kill -TERM "$PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$PID" 2>/dev/null || true
    rm -f "$PIDFILE"
  fi ;;
status)
  [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null && echo running || { echo stopped; exit 1; } ;;
*) echo "usage: $0 start|stop|status"; exit 2 ;;
esac
