#!/usr/bin/env bash
# The test command: sets up what the tests need (idempotent), then runs every test.
#   - util-linux `logger`, python3 and rsyslog with rsyslog-gnutls (real syslog senders and relay, also over
#     TLS), and the openssl CLI (the TLS tests' certificates and s_client)
#   - a Python >= 3.12 venv (.venv-panel) with django-log-panel, to read our databases with the real admin,
#     and the OpenTelemetry SDK with its OTLP exporters, as real OTLP senders
#   - PostgreSQL on 127.0.0.1:5432 and MariaDB on 127.0.0.1:3306 (started if installed but stopped)
#   - a MongoDB-wire-compatible stand-in (nx-27017 from PyPI) on 127.0.0.1:27917, started here
#   - syslog-ng's loggen (unpacked into a cache, see below) as a TLS load generator
#   - curl, systemd's tools, and the Debian package built with cargo-deb (LPC_SKIP_PACKAGE=1 skips it);
#     tests/package.rs is #[ignore]d and run after the others when the package was built
# Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "scripts/test.sh: $*" >&2; exit 1; }

command -v cargo >/dev/null || die "cargo is missing"
command -v python3 >/dev/null || die "python3 is missing"
APT_UPDATED=""
apt_install() {
  [ -n "$APT_UPDATED" ] || { apt-get update -q >/dev/null && APT_UPDATED=1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null
}
command -v logger >/dev/null || apt_install bsdutils || die "logger (util-linux) is missing"
[ -x /usr/sbin/rsyslogd ] || apt_install rsyslog || die "rsyslog (a real relay for the tests) could not be installed"
# rsyslog's TLS driver (gtls) and the openssl CLI: tests/tls.rs relays over TLS, makes its CA and
# certificates with openssl and probes with `openssl s_client`.
ls /usr/lib/*/rsyslog/lmnsd_gtls.so >/dev/null 2>&1 || apt_install rsyslog-gnutls \
  || die "rsyslog-gnutls (rsyslog's TLS driver, for tests/tls.rs) could not be installed"
command -v openssl >/dev/null || apt_install openssl || die "openssl (for tests/tls.rs) could not be installed"
# syslog-ng's loggen (a load generator that speaks TLS), for tests/tls.rs: unpacked from Debian's packages
# into a cache (the installed package would conflict with rsyslog), behind a wrapper that sets its paths.
LPC_LOGGEN=${LPC_LOGGEN:-${XDG_CACHE_HOME:-$HOME/.cache}/log-panel-collector/sng/loggen}
if [ ! -x "$LPC_LOGGEN" ]; then
  root=$(dirname "$LPC_LOGGEN"); mkdir -p "$root"; d=$(mktemp -d)
  pkgs="syslog-ng-core libivykis0 libnet1 libpcre3 libwrap0"
  (cd "$d" && apt-get download -q $pkgs >/dev/null 2>&1) \
    || { apt-get update -q >/dev/null && (cd "$d" && apt-get download -q $pkgs >/dev/null); } \
    || die "could not download syslog-ng's loggen ($pkgs)"
  for f in "$d"/*.deb; do dpkg -x "$f" "$root"; done; rm -rf "$d"
  multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo "$(uname -m)-linux-gnu")
  cat > "$LPC_LOGGEN" <<WRAP
#!/bin/sh
export LD_LIBRARY_PATH="$root/usr/lib/$multiarch:$root/usr/lib/syslog-ng:$root/lib/$multiarch"
export SYSLOGNG_PREFIX="$root/usr"
exec "$root/usr/bin/loggen" "\$@"
WRAP
  chmod +x "$LPC_LOGGEN"
  "$LPC_LOGGEN" --help >/dev/null 2>&1 || die "loggen does not run ($LPC_LOGGEN)"
fi
export LPC_LOGGEN
command -v curl >/dev/null || apt_install curl || die "curl is missing"
{ command -v systemd-analyze && command -v systemd-socket-activate; } >/dev/null || apt_install systemd \
  || die "systemd (systemd-analyze, systemd-socket-activate) could not be installed"

# PostgreSQL: the tests create their own databases on it; initdb/pg_ctl serve the outage test.
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  if ls /etc/postgresql/*/main >/dev/null 2>&1; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  fi
  for _ in $(seq 1 50); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.2; done
  pg_isready -q -h 127.0.0.1 -p 5432 || die "PostgreSQL is not reachable on 127.0.0.1:5432"
fi

# MariaDB/MySQL on 127.0.0.1:3306 (root, empty password): the MySQL backend's tests create their databases on it.
if ! mariadb-admin -h 127.0.0.1 -u root ping >/dev/null 2>&1; then
  if [ -x /usr/sbin/mariadbd ]; then
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
  fi
  for _ in $(seq 1 100); do mariadb-admin -h 127.0.0.1 -u root ping >/dev/null 2>&1 && break; sleep 0.2; done
  mariadb-admin -h 127.0.0.1 -u root ping >/dev/null 2>&1 || die "MariaDB/MySQL is not reachable on 127.0.0.1:3306"
fi

# The panel venv (Python >= 3.12: django-log-panel needs it).
VENV=.venv-panel
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import log_panel, opentelemetry.sdk, grpc' 2>/dev/null; then
  PY=""
  for c in python3.13 python3.12 /root/.pyenv/versions/3.13*/bin/python /root/.pyenv/versions/3.12*/bin/python; do
    if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then PY=$c; break; fi
  done
  [ -n "$PY" ] || die "no Python >= 3.12 found for the django-log-panel venv (install python3.12)"
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r tests/panel/requirements.txt -r tests/otlp/requirements.txt \
    || die "pip install of tests/panel/requirements.txt and tests/otlp/requirements.txt failed"
fi
export LPC_PANEL_PYTHON="$PWD/$VENV/bin/python"

# MongoDB: no genuine mongod can be installed here; the wire-compatible stand-in (nx-27017, PyPI) runs on
# a port of its own for the tests, and is stopped when they end.
export MONGO_TEST_ROOT=${MONGO_TEST_ROOT:-${TMPDIR:-/tmp}/lpc-mongo-test}
export MONGO_TEST_PORT=${MONGO_TEST_PORT:-27917}
scripts/mongo-test-server.sh start || die "the MongoDB stand-in did not start (scripts/mongo-test-server.sh)"
trap 'scripts/mongo-test-server.sh stop' EXIT
export LPC_TEST_MONGO="mongodb://127.0.0.1:$MONGO_TEST_PORT"
export LPC_MONGO_PYTHON="$MONGO_TEST_ROOT/venv/bin/python"
export LPC_MONGO_STANDIN=1

# The Debian package, which tests/package.rs installs and removes (LPC_SKIP_PACKAGE=1 skips both).
if [ "${LPC_SKIP_PACKAGE:-}" != 1 ]; then
  command -v cargo-deb >/dev/null || cargo install cargo-deb --locked --version 3.8.0 \
    || die "cargo-deb could not be installed from crates.io"
  command -v adduser >/dev/null || apt_install adduser || die "adduser is missing"
  cargo deb --profile deb -o target/debian/ || die "cargo deb failed"
  LPC_DEB=$(ls -t target/debian/log-panel-collector_*.deb | head -1)
  export LPC_DEB
fi

cargo test --all-targets "$@"
# tests/package.rs is #[ignore]d, so that a run without the package shows it as skipped: run it here
# when the package was built.
if [ -n "${LPC_DEB:-}" ]; then
  cargo test --test package -- --ignored
else
  echo "scripts/test.sh: LPC_SKIP_PACKAGE=1: the Debian package test was skipped (shown as ignored above)"
fi
