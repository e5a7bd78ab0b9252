#!/usr/bin/env bash
# Installs Debian's Chromium, which the web review app's tests drive
# (web/browser_test.go, through chromedp). With CI=true those tests fail,
# rather than skip, when no browser is found.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
	echo "chromium already installed: $(chromium --version 2>/dev/null || true)"
	exit 0
fi

sudo=""
if [ "$(id -u)" != 0 ]; then
	sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
# Another apt may hold the lock for a while: wait for it rather than fail.
$sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
$sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends chromium fonts-dejavu-core
chromium --version
