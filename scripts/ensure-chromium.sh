#!/usr/bin/env bash
# The browser tests drive the system's Chromium (never a downloaded browser build).
# Install it when we can (root with apt); otherwise the browser tests skip and say why.
set -u
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Chromium for the browser tests (apt-get install chromium fonts-nanum)"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-nanum >/dev/null) \
    || echo "could not install Chromium; browser tests will be skipped"
else
  echo "Chromium is not installed and cannot be installed here; browser tests will be skipped"
fi
exit 0
