#!/usr/bin/env bash
# Just the tests that start real frameworks under PM2 (tests/integration/live.rs): install the
# test PM2 and the fixtures/live projects from their lockfiles (skipped when already installed),
# then run them. Extra arguments go to cargo test (`bash tests/live.sh -- --nocapture`).
set -euo pipefail
cd "$(dirname "$0")/.."
. tests/npm-ci.sh
for dir in tests/pm2 fixtures/live/*/; do
  npm_ci "$dir"
done
exec cargo test --locked --test integration live:: "$@"
