#!/usr/bin/env bash
# Tunnel benchmark: latency from `pm2 start` to the app answering on the laptop, the processes
# spawned in steady state, and two servers sharing a port behind one tunnel; the tunnel against a
# polling reference, side by side in one run (bench/tunnel.rs says how).
#
# Usage: bash bench/tunnel.sh [--apps N] [--duration SECS] [--interval SECS] [--strict]
# Needs: root (network namespaces; strace attached to sshd), strace, iproute2's `ip`, OpenSSH's
# server and client, Node.js and the test PM2 (bash tests/run.sh installs them all). It builds the
# release binary and the benchmark itself (CARGO_TARGET_DIR is honoured). About 4 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() {
  echo "bench/tunnel.sh: $*" >&2
  exit 1
}
have() { command -v "$1" >/dev/null 2>&1; }
# An executable file NAME on PATH or at one of the paths given (`command -v` alone would take a
# file that cannot be run).
found() {
  local name=$1 p d
  shift
  local IFS=:
  for d in $PATH; do [ -f "$d/$name" ] && [ -x "$d/$name" ] && return 0; done
  for p in "$@"; do [ -f "$p" ] && [ -x "$p" ] && return 0; done
  return 1
}

[ "$(id -u)" = 0 ] || fail "needs root: it makes network namespaces and attaches strace to sshd"
found strace /usr/bin/strace || fail "needs strace (apt-get install strace)"
found ip /usr/sbin/ip /sbin/ip /usr/bin/ip /bin/ip || fail "needs iproute2's ip (apt-get install iproute2)"
[ -x /usr/sbin/sshd ] && have ssh || fail "needs OpenSSH's server and client (apt-get install openssh-server openssh-client)"
have node || fail "needs Node.js (bash tests/run.sh installs it)"
[ -x tests/pm2/node_modules/.bin/pm2 ] || fail "needs the test PM2: npm ci --prefix tests/pm2 (bash tests/run.sh does)"
have cargo || fail "needs cargo"

cargo build --release --locked --quiet --test tunnel-bench
exec cargo test --release --locked --quiet --test tunnel-bench -- "$@"
