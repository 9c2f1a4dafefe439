#!/usr/bin/env bash
# Makes sure headless Chromium and its WebDriver are here for tests/test_browser.py; safe to
# run again (it does only what is missing). Installs Debian's chromium and chromium-driver
# (one source, so the two versions match; the tests give Selenium both paths and it downloads
# nothing) and a Chinese font (fonts-wqy-zenhei, so that the zh screenshots are readable).
# Needs root or password-less sudo, and apt. Exits non-zero when the browser is still missing.
set -euo pipefail

say() { echo "provision-browser: $*" >&2; }

have_browser() {
  command -v chromedriver >/dev/null 2>&1 &&
    { command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; }
}

have_browser && exit 0
if [ "$(id -u)" = 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  say "no chromium/chromedriver and installing them needs root: run this script with sudo"
  exit 1
fi
command -v apt-get >/dev/null 2>&1 || {
  say "no apt-get here: install Chromium and its chromedriver with this system's packages"
  exit 1
}
packages=(chromium chromium-driver fonts-wqy-zenhei)
say "installing ${packages[*]} with apt"
export DEBIAN_FRONTEND=noninteractive
# A fresh machine's package lists may be stale or empty: update once, only when needed.
"${as_root[@]}" apt-get install -y -q "${packages[@]}" >/dev/null ||
  { "${as_root[@]}" apt-get update -q >/dev/null &&
    "${as_root[@]}" apt-get install -y -q "${packages[@]}" >/dev/null; }
have_browser
