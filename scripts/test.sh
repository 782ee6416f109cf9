#!/usr/bin/env bash
# The whole test suite, on a fresh Debian 12 machine too: installs what the tests need that
# cargo does not (Chromium and ChromeDriver for the page's tests, GNU coreutils' `tail` as the
# differential oracle, nginx and Prometheus), then runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
command -v tail >/dev/null 2>&1 || need+=(coreutils)
# A real reverse proxy for the base-path tests, a real Prometheus and promtool for /metrics.
[ -x /usr/sbin/nginx ] || need+=(nginx)
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
# The real logrotate for the rotation-chain tests.
[ -x /usr/sbin/logrotate ] || need+=(logrotate)
if ((${#need[@]})); then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "installing: ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

cargo test --locked --workspace "$@"
