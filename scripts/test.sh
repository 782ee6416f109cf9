#!/usr/bin/env bash
# The whole test suite, on a fresh Debian 12 machine too: installs what the tests need that
# cargo does not (Chromium and ChromeDriver for the page's tests, GNU coreutils' `tail` as the
# differential oracle, nginx, Prometheus and nats-server), then runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
command -v tail >/dev/null 2>&1 || need+=(coreutils)
# A real reverse proxy for the base-path tests, a real Prometheus and promtool for /metrics.
[ -x /usr/sbin/nginx ] || need+=(nginx)
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
# `prlimit` raises the open-files limit for the 10,000 clients of `metrics_load`.
command -v prlimit >/dev/null 2>&1 || need+=(util-linux)
# A real NATS JetStream engine for the agent and hub tests (`scale_out`).
command -v nats-server >/dev/null 2>&1 || need+=(nats-server)
# The packaging tests: the unit files' check, the man page's rendering and the completions;
# systemd-socket-activate (same package) for the socket-activation tests.
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v systemd-socket-activate >/dev/null 2>&1 || need+=(systemd)
command -v man >/dev/null 2>&1 || need+=(man-db)
# Shells that load the generated completions.
command -v zsh >/dev/null 2>&1 || need+=(zsh)
command -v fish >/dev/null 2>&1 || need+=(fish)
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
