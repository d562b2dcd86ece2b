#!/usr/bin/env bash
# Install Debian's chromium for the browser tests when it is missing (CI machines start without it).
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
    echo "browser: chromium is missing; install it with 'sudo apt-get install chromium' (browser tests will be skipped)" >&2
    exit 0
fi
echo "browser: installing Debian's chromium"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq chromium >/dev/null
