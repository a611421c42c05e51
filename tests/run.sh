#!/usr/bin/env bash
# Install what the test suite needs (Node.js and OpenSSH's server from Debian when missing; the PM2
# pinned by tests/pm2/package-lock.json, the older PM2s pinned by tests/pm2-5 and tests/pm2-6 that
# the daemon tests also run against, the Vite pinned by fixtures/vite-app/package-lock.json, and the
# real frameworks of fixtures/live/*, each pinned by its package-lock.json), then run the whole
# suite: formatting, lints, unit and integration tests.
set -euo pipefail
cd "$(dirname "$0")/.."

have() { command -v "$1" >/dev/null 2>&1; }

apt_install() {
  if [ "$(id -u)" = 0 ] && have apt-get; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    echo "tests/run.sh: missing $*; install it (as root this script does it with apt-get)" >&2
    exit 1
  fi
}

have node && have npm || apt_install nodejs npm
[ -x /usr/sbin/sshd ] && have ssh && have ssh-keygen || apt_install openssh-server openssh-client
# strace kills pm2-port at each of its writes in the fault-injection tests (tests/integration/crash.rs).
[ -x /usr/bin/strace ] || apt_install strace
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 18 ]; then
  echo "tests/run.sh: PM2 needs Node.js >= 18, found $(node --version)" >&2
  exit 1
fi

if ! node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)'; then
  echo "tests/run.sh: the real frameworks of fixtures/live (Storybook 10, Vite 7) need Node.js >= 20.19, found $(node --version)" >&2
  exit 1
fi

# Each from its lockfile (tests/npm-ci.sh: skipped when node_modules was installed from it already).
. tests/npm-ci.sh
for dir in tests/pm2 tests/pm2-5 tests/pm2-6 fixtures/vite-app fixtures/live/*/; do
  npm_ci "$dir"
done

cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
cargo test --locked
