#!/usr/bin/env bash
# Proxy benchmark: requests per second and p50/p99 latency through `tunnel`'s proxy against the
# same SSH forward without it, side by side in one run (bench/proxy.rs says how).
#
# Usage: bash bench/proxy.sh [--secs N] [--rounds N] [--delay MS] [--strict]
# Needs: root (network namespaces), iproute2's `ip`, OpenSSH's server and client, Node.js and the
# test PM2 (bash tests/run.sh installs them all). About 3 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
fail() {
  echo "bench/proxy.sh: $*" >&2
  exit 1
}
have() { command -v "$1" >/dev/null 2>&1; }
[ "$(id -u)" = 0 ] || fail "needs root: it makes network namespaces"
[ -x /usr/sbin/ip ] || [ -x /sbin/ip ] || [ -x /usr/bin/ip ] || [ -x /bin/ip ] || fail "needs iproute2's ip (apt-get install iproute2)"
[ -x /usr/sbin/sshd ] && have ssh || fail "needs OpenSSH's server and client (apt-get install openssh-server openssh-client)"
have node || fail "needs Node.js (bash tests/run.sh installs it)"
[ -x tests/pm2/node_modules/.bin/pm2 ] || fail "needs the test PM2: npm ci --prefix tests/pm2 (bash tests/run.sh does)"
cargo build --release --locked --quiet --test proxy-bench
exec cargo test --release --locked --quiet --test proxy-bench -- "$@"
