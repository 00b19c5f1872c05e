#!/usr/bin/env bash
# Make sure the test suite has what it needs on this machine: Debian's Chromium, and PostgreSQL and
# Redis answering on loopback (started with the commands the README gives when they are down).
# Where no PostgreSQL is installed the tests start an embedded one themselves (tests/pg.py).
set -euo pipefail

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=""
apt_install() {
  [ -n "$apt_updated" ] || { as_root apt-get update -qq; apt_updated=1; }
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

command -v chromium >/dev/null 2>&1 || { echo "installing Debian chromium"; apt_install chromium; }

if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
  if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
    echo "starting PostgreSQL on 127.0.0.1:5432"
    as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
  fi
else
  echo "no PostgreSQL installed: the tests use an embedded one"
fi

command -v redis-server >/dev/null 2>&1 || { echo "installing Debian redis-server"; apt_install redis-server; }
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "starting Redis on 127.0.0.1:6379 (nothing kept on disk)"
  mkdir -p /tmp/backoffice-redis
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /tmp/backoffice-redis --logfile /tmp/backoffice-redis/redis.log
  for _ in $(seq 1 50); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.1; done
fi
