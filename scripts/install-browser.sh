#!/bin/sh
# Installs Debian's Chromium and chromedriver for the end-to-end browser test
# (cargo test -p session-web-example --features e2e), where they are missing.
# Idempotent; needs root (or sudo) and the Debian package mirror.
set -eu

need=""
command -v chromium >/dev/null 2>&1 || [ -x /usr/lib/chromium/chromium ] || need="$need chromium"
command -v chromedriver >/dev/null 2>&1 || [ -x /usr/lib/chromium/chromedriver ] || need="$need chromium-driver"

if [ -z "$need" ]; then
    echo "install-browser: chromium and chromedriver already installed"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
echo "install-browser: installing$need"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $need
command -v chromedriver >/dev/null 2>&1 || [ -x /usr/lib/chromium/chromedriver ] || {
    echo "install-browser: chromedriver still missing after install" >&2
    exit 1
}
echo "install-browser: done"
