# Sourced by tests/run.sh and tests/live.sh: `npm_ci DIR` installs DIR's packages from its lockfile
# with `npm ci`, unless DIR/node_modules was installed from this very package.json and lockfile
# (a stamp inside it says so), so that a second run does not reinstall. A fresh checkout, or a
# changed manifest or lockfile, installs.
npm_ci() {
  local dir=${1%/} sum stamp
  stamp="$dir/node_modules/.pm2-port-installed"
  sum=$(cat "$dir/package.json" "$dir/package-lock.json" | sha256sum | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ]; then
    return 0
  fi
  npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
  echo "$sum" >"$stamp"
}
