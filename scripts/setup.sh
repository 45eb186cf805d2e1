#!/usr/bin/env bash
# Make a bare Debian 12 machine ready for Cadenza: system packages (as root, only the missing
# ones), hls.js for the browser test, then .venv with the project and its test and development
# extras. Fast when done before.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || missing+=(ffmpeg)
command -v make >/dev/null || missing+=(make)
# The reference proxy and load generator of `cadenza bench edge`.
command -v nginx >/dev/null || missing+=(nginx-light)
# The PostgreSQL catalog's tests start a temporary cluster of their own (no service is used).
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
command -v wrk >/dev/null || missing+=(wrk)
# The play-event log of fleets (Redis Streams); its tests start a redis-server of their own.
command -v redis-server >/dev/null || missing+=(redis-server)
# The monitoring test: a real Prometheus, and promtool for the rules (both in Debian's package).
command -v prometheus >/dev/null && command -v promtool >/dev/null || missing+=(prometheus)
# The standard-player test: hls.js from npm, played in headless Chromium.
command -v chromium >/dev/null || missing+=(chromium)
command -v npm >/dev/null || missing+=(nodejs npm)
if ! command -v python3 >/dev/null; then
    missing+=(python3 python3-venv)
elif ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    missing+=(python3-venv)
fi

if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
        echo "setup: missing system packages: ${missing[*]}" >&2
        echo "setup: install them as root (apt-get install ${missing[*]}) and run 'make setup' again" >&2
        exit 1
    fi
    echo "setup: installing ${missing[*]} with apt-get"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [[ ! -d tests/browser/node_modules/hls.js ]]; then
    echo "setup: installing hls.js with npm"
    if [[ -f tests/browser/package-lock.json ]]; then
        npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error
    else
        npm install --prefix tests/browser --no-audit --no-fund --loglevel=error
    fi
fi

# The npm dependencies of the HTTP cache conformance suite (`cadenza bench conformance`), under
# build/ by the hash of its package.json, as bench/conformance.py looks them up.
suite=../shared/cache-tests
if [[ -f $suite/package.json ]]; then
    modules=build/cache-tests/$(sha256sum "$suite/package.json" | cut -c1-16)
    if [[ ! -d $modules/node_modules ]]; then
        echo "setup: installing the cache conformance suite's npm dependencies"
        rm -rf "$modules.staging"
        mkdir -p "$modules.staging"
        cp "$suite/package.json" "$modules.staging/"
        npm install --prefix "$modules.staging" --omit=dev --no-audit --no-fund --loglevel=error
        mv "$modules.staging" "$modules"
    fi
fi

if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "setup: Cadenza needs Python 3.11 or newer; found $(python3 --version)" >&2
    exit 1
fi

stamp=.venv/.installed
if [[ -f $stamp && $stamp -nt pyproject.toml && $stamp -nt scripts/setup.sh ]]; then
    exit 0
fi
[[ -x .venv/bin/python ]] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test,dev]'
touch "$stamp"
echo "setup: .venv is ready ($(.venv/bin/cadenza --version))"
