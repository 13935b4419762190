#!/usr/bin/env bash
# A throwaway PostgreSQL server for the test suite, listening only on a Unix socket in a
# temporary directory.
#
#   source .ci/postgres.sh && pg_start && trap pg_stop EXIT   # exports PREPAID_WALLET_TEST_DSN
#   bash .ci/postgres.sh start    # prints the exports (eval "$(bash .ci/postgres.sh start)")
#   bash .ci/postgres.sh stop DIR
#
# Binaries: pg_ctl/initdb on PATH, else /usr/lib/postgresql/*/bin, else apt-get install. As root,
# the server runs as the system user "pgtest" (created if missing): initdb refuses root.

_pg_bindir() {
  if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
    dirname "$(command -v pg_ctl)"
    return 0
  fi
  local dir
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$dir/pg_ctl" ] && [ -x "$dir/initdb" ]; then
      echo "$dir"
      return 0
    fi
  done
  return 1
}

_pg_tool() {  # a client tool: next to pg_ctl, else on PATH
  if [ -x "$1/$2" ]; then echo "$1/$2"; else command -v "$2"; fi
}

_pg_as() {  # run a command as the server's user
  if [ "$(id -u)" = "0" ]; then
    runuser -u "$PG_TEST_USER" -- "$@"
  else
    "$@"
  fi
}

pg_start() {
  local bindir
  if ! bindir="$(_pg_bindir)"; then
    echo "== postgres: binaries not found; installing" >&2
    apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >&2
    bindir="$(_pg_bindir)" || { echo "postgres: no pg_ctl after install" >&2; return 1; }
  fi
  if [ "$(id -u)" = "0" ]; then
    PG_TEST_USER=pgtest
    id -u "$PG_TEST_USER" >/dev/null 2>&1 || useradd -r -M -s /usr/sbin/nologin "$PG_TEST_USER"
  else
    PG_TEST_USER="$(id -un)"
  fi
  PG_TEST_DIR="$(mktemp -d /tmp/pgtest.XXXXXX)"
  chmod 755 "$PG_TEST_DIR"
  [ "$(id -u)" = "0" ] && chown "$PG_TEST_USER" "$PG_TEST_DIR"
  _pg_as "$bindir/initdb" -D "$PG_TEST_DIR/data" -U "$PG_TEST_USER" -A trust -E UTF8 \
    --locale=C >"$PG_TEST_DIR/initdb.log" 2>&1 \
    || { cat "$PG_TEST_DIR/initdb.log" >&2; return 1; }
  _pg_as "$bindir/pg_ctl" -D "$PG_TEST_DIR/data" -l "$PG_TEST_DIR/server.log" -w -t 60 \
    -o "-c listen_addresses='' -c unix_socket_directories='$PG_TEST_DIR' -c max_connections=200" \
    start >&2 || { cat "$PG_TEST_DIR/server.log" >&2; return 1; }
  local i
  for i in $(seq 1 60); do
    if _pg_as "$(_pg_tool "$bindir" psql)" -h "$PG_TEST_DIR" -U "$PG_TEST_USER" -d postgres -qtAc 'SELECT 1' \
        >/dev/null 2>&1; then
      break
    fi
    sleep 0.5
  done
  _pg_as "$(_pg_tool "$bindir" createdb)" -h "$PG_TEST_DIR" -U "$PG_TEST_USER" wallets >&2 || return 1
  PG_TEST_BINDIR="$bindir"
  export PG_TEST_DIR PG_TEST_USER PG_TEST_BINDIR
  export PREPAID_WALLET_TEST_DSN="postgresql:///wallets?host=$PG_TEST_DIR&user=$PG_TEST_USER"
  echo "== postgres: PREPAID_WALLET_TEST_DSN=$PREPAID_WALLET_TEST_DSN" >&2
}

pg_stop() {
  local dir="${1:-${PG_TEST_DIR:-}}"
  [ -n "$dir" ] && [ -d "$dir/data" ] || return 0
  local bindir="${PG_TEST_BINDIR:-$(_pg_bindir)}"
  PG_TEST_USER="${PG_TEST_USER:-$(stat -c %U "$dir/data")}"
  _pg_as "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
  echo "== postgres: stopped and removed $dir" >&2
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  case "${1:-}" in
    start)
      pg_start
      echo "export PG_TEST_DIR='$PG_TEST_DIR' PG_TEST_USER='$PG_TEST_USER'"
      echo "export PG_TEST_BINDIR='$PG_TEST_BINDIR'"
      echo "export PREPAID_WALLET_TEST_DSN='$PREPAID_WALLET_TEST_DSN'"
      ;;
    stop) pg_stop "${2:-}" ;;
    *) echo "usage: $0 start | stop DIR" >&2; exit 2 ;;
  esac
fi
