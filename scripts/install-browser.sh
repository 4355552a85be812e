#!/usr/bin/env bash
# Install Debian's chromium for headless browser tests (Playwright drives it via
# executable_path=/usr/bin/chromium). Idempotent: does nothing if already present.
# Never runs `playwright install` (browser downloads are not available here).
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then
    echo "install-browser: $CHROMIUM already present, nothing to do"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
# Recommends are skipped (chromium-sandbox, upower, ... are not needed headless);
# fonts-liberation gives metric-compatible Arial/Times for sane screenshots.
if ! { $SUDO apt-get update -qq \
       && $SUDO apt-get install -y -qq --no-install-recommends chromium fonts-liberation; } \
       >"$log" 2>&1; then
    cat "$log" >&2
    echo "install-browser: apt-get failed" >&2
    exit 1
fi

if [ ! -x "$CHROMIUM" ]; then
    echo "install-browser: install finished but $CHROMIUM is missing" >&2
    exit 1
fi
echo "install-browser: installed $("$CHROMIUM" --version 2>/dev/null || echo chromium)"
