#!/usr/bin/env bash
# Install the Debian packages the tests drive: Chromium (widget browser tests)
# and Dovecot (a real IMAP server for the email connector). Idempotent.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v dovecot >/dev/null 2>&1 || need+=(dovecot-imapd)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
echo "==> Installing Debian packages: ${need[*]}"
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "error: ${need[*]} missing and not root; install them with apt-get" >&2
    exit 1
  fi
else
  SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq || true
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
# Dovecot's package starts a system daemon on :143; the tests run their own.
if command -v dovecot >/dev/null 2>&1; then
  $SUDO systemctl disable --now dovecot >/dev/null 2>&1 || $SUDO service dovecot stop >/dev/null 2>&1 || true
  $SUDO pkill -x dovecot >/dev/null 2>&1 || true
fi
