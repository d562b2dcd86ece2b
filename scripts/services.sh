#!/usr/bin/env bash
# Install what the scale-out tests start on loopback, when missing (CI machines start without them):
# Debian's PostgreSQL server binaries (the suite runs its own temporary cluster for the PostgreSQL
# record store) and nginx (the reference deployment's reverse proxy, checked by `nginx -t`).
set -euo pipefail
need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || need+=(postgresql)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "services: missing ${need[*]}; install with 'sudo apt-get install ${need[*]}' (their tests will fail)" >&2
    exit 0
fi
echo "services: installing ${need[*]} from Debian"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
