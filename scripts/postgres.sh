#!/usr/bin/env bash
# Install Debian's PostgreSQL server binaries when missing (CI machines start without them): the test
# suite starts its own temporary cluster from them, on a loopback port, for the PostgreSQL record store.
set -euo pipefail
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && exit 0
command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1 && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "postgres: missing; install with 'sudo apt-get install postgresql' (PostgreSQL tests will fail)" >&2
    exit 0
fi
echo "postgres: installing postgresql from Debian"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends postgresql >/dev/null
