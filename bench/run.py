#!/usr/bin/env python3
"""Benchmark: pm2-port against `pm2 jlist`, side by side in one run.

For each N (apps under PM2, a third of them stopped) it builds its own PM2 world (own PM2_HOME,
own state directory, M extra listening sockets, one configured project), then runs, interleaved
for several rounds: `pm2-port next`, `pm2-port init` on the unchanged project, `pm2-port list
--json` and `pm2 jlist`. It prints each command's median time, its ratio to `pm2 jlist`, and its
peak memory (max RSS); then how `next` grows from the smallest N to the largest.

Usage: python3 bench/run.py [--rounds 15] [--sizes 10,50,200] [--listeners 20]
Needs: the test PM2 (npm ci --prefix tests/pm2) and GNU time (Debian's `time`); it builds the
release binary itself.
"""

import argparse
import json
import os
import platform
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PM2 = os.path.join(ROOT, "tests", "pm2", "node_modules", ".bin", "pm2")
BIN = os.path.join(ROOT, "target", "release", "pm2-port")
TIME = "/usr/bin/time"
BASE_PORT = 41000


def timed(cmd, env):
    """Run `cmd` once and return its wall-clock seconds."""
    start = time.perf_counter()
    pid = os.posix_spawn(cmd[0], cmd, env,
                         file_actions=[(os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                                       (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0)])
    _, status = os.waitpid(pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(cmd)} failed with {os.waitstatus_to_exitcode(status)}")
    return elapsed


def daemon_round_trip(home):
    """One `getMonitorData` call on PM2's daemon socket, the way pm2-port makes it: the floor under
    every pm2-port command (seconds)."""
    call = b'j:{"type":"call","method":"getMonitorData","args":[{}]}'
    msg_id = b"s:bench:0"
    start = time.perf_counter()
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(os.path.join(home, "rpc.sock"))
        s.sendall(bytes([0x12]) + struct.pack(">I", len(call)) + call
                  + struct.pack(">I", len(msg_id)) + msg_id)
        buf = bytearray()

        def need(n):
            while len(buf) < n:
                chunk = s.recv(1 << 20)
                if not chunk:
                    sys.exit("the daemon closed the socket")
                buf.extend(chunk)

        need(1)
        at = 1
        for _ in range(buf[0] & 0xF):
            need(at + 4)
            (length,) = struct.unpack(">I", buf[at:at + 4])
            at += 4 + length
            need(at)
    return time.perf_counter() - start


def peak_rss_kib(cmd, env):
    """The command's peak resident memory, from GNU time. (A child of this Python process would
    report Python's own memory: the kernel folds the pre-exec address space into ru_maxrss.)"""
    out = subprocess.run([TIME, "-f", "%M", *cmd], env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True, check=True)
    return int(out.stderr.strip().splitlines()[-1])


def world(n, listeners, tmp):
    """A PM2 home with n apps (a third stopped), a configured project, and listening sockets."""
    home = os.path.join(tmp, f"pm2-{n}")
    state = os.path.join(tmp, f"state-{n}")
    os.makedirs(home)
    env = dict(os.environ, PM2_HOME=home, PM2_PORT_STATE_DIR=state, PM2_PORT_PM2=PM2,
               PM2_PORT_RANGE=f"{BASE_PORT}-{BASE_PORT + 999}")
    env.pop("PORT", None)
    apps = [{"name": f"app-{i:03}", "script": "/bin/sleep", "args": ["100000"],
             "interpreter": "none", "cwd": tmp, "env": {"PORT": BASE_PORT + i},
             "autorestart": False} for i in range(n)]
    eco = os.path.join(tmp, f"apps-{n}.config.js")
    with open(eco, "w") as f:
        f.write("module.exports = " + json.dumps({"apps": apps}) + ";\n")
    subprocess.run([PM2, "start", eco], env=env, check=True, stdout=subprocess.DEVNULL)
    stopped = [a["name"] for a in apps[::3]]
    if stopped:
        subprocess.run([PM2, "stop", *stopped], env=env, check=True, stdout=subprocess.DEVNULL)
    socks = []
    for i in range(listeners):
        s = socket.socket(socket.AF_INET6 if i % 2 else socket.AF_INET)
        s.bind(("::1" if i % 2 else "127.0.0.1", BASE_PORT + n + i))
        s.listen()
        socks.append(s)
    project = os.path.join(tmp, f"project-{n}")
    os.makedirs(project)
    with open(os.path.join(project, "package.json"), "w") as f:
        f.write('{"name": "project", "scripts": {"dev": "vite"}, "devDependencies": {"vite": "6"}}\n')
    subprocess.run([BIN, "init", project, "--quiet"], env=env, check=True)
    return env, project, socks


def bench(n, listeners, rounds, tmp):
    env, project, socks = world(n, listeners, tmp)
    commands = {
        "pm2-port next": [BIN, "next"],
        "pm2-port init (no change)": [BIN, "init", project, "--quiet"],
        "pm2-port list --json": [BIN, "list", "--json"],
        "pm2 jlist": [PM2, "jlist"],
    }
    # Warm up every command once (page cache, daemon), then interleave the rounds.
    for cmd in commands.values():
        timed(cmd, env)
    times = {k: [] for k in commands}
    floor = []
    for _ in range(rounds):
        for name, cmd in commands.items():
            times[name].append(timed(cmd, env))
        floor.append(daemon_round_trip(env["PM2_HOME"]))
    rss = {k: max(peak_rss_kib(cmd, env) for _ in range(3)) for k, cmd in commands.items()}
    subprocess.run([PM2, "kill"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for s in socks:
        s.close()
    results = {k: (statistics.median(v), rss[k]) for k, v in times.items()}
    results["(daemon round trip alone)"] = (statistics.median(floor), 0)
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--sizes", default="10,50,200")
    ap.add_argument("--listeners", type=int, default=20)
    args = ap.parse_args()
    if not os.path.exists(PM2):
        sys.exit(f"no test PM2 at {PM2}: run `npm ci --prefix tests/pm2`")
    if not os.path.exists(TIME):
        sys.exit(f"no GNU time at {TIME} (it measures peak memory): `apt-get install time`")
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    sizes = [int(s) for s in args.sizes.split(",")]

    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    print(f"machine: {platform.system()} {platform.release()}, {os.cpu_count()} cores, {cpu}")
    # Not `pm2 --version`: it would start a daemon of its own.
    with open(os.path.join(ROOT, "tests", "pm2", "node_modules", "pm2", "package.json")) as f:
        pm2_version = json.load(f)["version"]
    print(f"pm2 {pm2_version}, node {subprocess.run(['node', '--version'], capture_output=True, text=True).stdout.strip()}, "
          f"{args.rounds} rounds, {args.listeners} extra listeners\n")

    results = {}
    with tempfile.TemporaryDirectory(prefix="pm2-port-bench-") as tmp:
        for n in sizes:
            results[n] = bench(n, args.listeners, args.rounds, tmp)
            ref = results[n]["pm2 jlist"][0]
            print(f"N = {n} apps ({len(range(0, n, 3))} stopped)")
            print(f"  {'command':<28} {'median':>10} {'x pm2 jlist':>12} {'peak RSS':>10}")
            for name, (med, rss) in results[n].items():
                mem = f"{rss / 1024:>8.1f}MiB" if rss else f"{'':>11}"
                print(f"  {name:<28} {med * 1000:>8.1f}ms {med / ref:>12.3f} {mem}")
            print()
    lo, hi = sizes[0], sizes[-1]
    for name in ["pm2-port next", "(daemon round trip alone)"]:
        growth = results[hi][name][0] / results[lo][name][0]
        print(f"{name} from N = {lo} to N = {hi}: {growth:.2f}x")


if __name__ == "__main__":
    main()
