#!/usr/bin/env bash
# Install Debian's chromium, and CJK fonts so Chinese renders in screenshots and on kiosks, when missing
# (CI machines start without them).
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
fc-list 2>/dev/null | grep -qi "noto.*cjk" || need+=(fonts-noto-cjk)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "browser: missing ${need[*]}; install with 'sudo apt-get install ${need[*]}' (browser tests will be skipped)" >&2
    exit 0
fi
echo "browser: installing ${need[*]} from Debian"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq "${need[@]}" >/dev/null
