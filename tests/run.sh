#!/usr/bin/env bash
# Install what the test suite needs (Node.js and OpenSSH's server from Debian when missing; the PM2
# pinned by tests/pm2/package-lock.json, the older PM2s pinned by tests/pm2-5 and tests/pm2-6 that
# the daemon tests also run against, the playwright-core pinned by tests/browser/package-lock.json
# (it drives Debian's Chromium, installed when missing), the Vite pinned by
# fixtures/vite-app/package-lock.json, and the real frameworks of fixtures/live/*, each pinned by its
# package-lock.json; lsof, strace, iproute2;
# Debian's rustc-web for the cross checks), then run the whole suite: formatting, lints, unit and integration tests,
# the macOS and ARM Linux checks, and `cargo package`.
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
# lsof: the socket-owner code used where there is no /proc (macOS) is run here too (src/sys/lsof.rs).
[ -x /usr/bin/lsof ] || apt_install lsof
# ip (iproute2): the tunnel tests run each server in its own network namespace
# (tests/integration/netns.rs), which also needs root.
[ -x /usr/sbin/ip ] || [ -x /sbin/ip ] || [ -x /usr/bin/ip ] || [ -x /bin/ip ] || apt_install iproute2
# strace kills pm2-port at each of its writes in the fault-injection tests (tests/integration/crash.rs).
[ -x /usr/bin/strace ] || apt_install strace
# Debian's Chromium: the browser tests drive it headless (tests/browser/drive.mjs,
# tests/integration/browser.rs); playwright-core downloads no browser of its own.
[ -x /usr/bin/chromium ] || apt_install chromium
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
for dir in tests/pm2 tests/pm2-5 tests/pm2-6 tests/browser fixtures/vite-app fixtures/live/*/; do
  npm_ci "$dir"
done

cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
# The tunnel benchmark is a `test = false` target, which `--all-targets` leaves out: linted here
# so that it keeps compiling against the test helpers it shares (it runs only when asked).
cargo clippy --locked --test tunnel-bench --test proxy-bench -- -D warnings
cargo test --locked

# The laptop end builds for macOS (Apple silicon and Intel) and ARM Linux: checked with the standard
# library built from source by Debian's rustc-web (it sits in /usr/bin beside rustup's toolchain and
# replaces nothing; RUSTC_BOOTSTRAP lets that stable compiler take -Zbuild-std). `check` needs no
# linker. The target directory is kept outside the clone, so that the standard library built once
# on this machine is reused by later runs (a first run takes about 5 minutes on 2 cores, a later
# one seconds).
rust_web_ok() {
  [ -x /usr/bin/cargo ] && [ -x /usr/bin/cargo-clippy ] && [ -d /usr/lib/rustlib/src/rust/library/std ] &&
    /usr/bin/rustc --version | awk '{ split($2, v, "."); exit !(v[1] > 1 || v[2] >= 89) }'
}
rust_web_ok || apt_install rustc-web cargo-web rust-web-src rust-web-clippy
if ! rust_web_ok; then
  echo "tests/run.sh: need Debian's rustc-web, cargo-web, rust-web-src and rust-web-clippy >= 1.89 (bookworm-security), found $(/usr/bin/rustc --version 2>&1)" >&2
  exit 1
fi
cross_dir=${PM2_PORT_CROSS_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pm2-port/cross-target}
cross() {
  env PATH="/usr/bin:$PATH" RUSTC_BOOTSTRAP=1 RUSTC=/usr/bin/rustc CARGO_TARGET_DIR="$cross_dir" \
    cargo "$@"
}
for target in aarch64-apple-darwin x86_64-apple-darwin aarch64-unknown-linux-gnu; do
  echo "tests/run.sh: cargo check --target $target (std from source, $(/usr/bin/rustc --version))"
  cross check -q --locked --all-targets -Zbuild-std=std,panic_abort --target "$target"
done
cross clippy -q --locked --all-targets -Zbuild-std=std,panic_abort --target aarch64-apple-darwin -- -D warnings

# Ready to publish: the package builds from what it would upload (nothing is uploaded).
cargo package --locked --allow-dirty -q
