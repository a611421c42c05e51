// The integration tests' browser: Debian's headless Chromium (/usr/bin/chromium) driven by the
// playwright-core pinned in package-lock.json (no browser of its own is downloaded). The tests run
// it inside the laptop's network namespace (`ip netns exec NS node drive.mjs`), so that Chromium's
// 127.0.0.1 and ::1 are the laptop's; tests/integration/browser.rs drives it.
//
//   node drive.mjs STEPS.json   runs the JSON array of steps in the file (`-`: stdin), then exits;
//   node drive.mjs              reads steps from stdin, one JSON value a line (a step, or an array
//                               of steps run in order), until stdin closes: a REPL.
//
// Each step is an object with one action and optional `page` (a name; pages are tabs of one
// browser context, created on first use, so that cookies are shared per host as in a real
// browser; default "main") and `timeout_ms` (default DRIVE_STEP_TIMEOUT_MS, 20000):
//
//   {"goto": URL}                      navigate; → {"status": 200, "url": "http://..."}
//   {"status": URL}                    navigate; → the HTTP status of the navigation (a number), or
//                                      Chromium's error when nothing answered ("net::ERR_CONNECTION_REFUSED";
//                                      the page then shows Chromium's error page)
//   {"text": SELECTOR}                 → the element's textContent (waits for it to exist)
//   {"wait_text": SELECTOR, "contains": STR}
//                                      wait until the element's text contains STR; → that text
//   {"eval": JS}                       an expression (a promise is awaited); → its value as JSON
//   {"wait_js": JS}                    wait until the expression is truthy; → its value
//   {"click": SELECTOR}                → null
//   {"cookies": URL}                   the context's cookies sent to URL; → [{name, value, domain, ...}]
//   {"screenshot": PATH, "full_page": false}
//                                      a PNG of the page; → {"path": PATH, "bytes": N}
//   {"console": true}                  → what the page logged so far: ["log: ...", "pageerror: ..."]
//
// One line is printed on stdout per step, as soon as it is done: {"ok": true, "value": ...}. On the
// first failure it prints {"ok": false, "error": "..."} (the step, the page's URL and what it
// logged last), repeats the message on stderr and exits 1. It never hangs: every step is bounded by
// its timeout, and the whole run by DRIVE_TIMEOUT_MS (default 120000), after which it fails (exit
// 2). Chromium is closed on every way out (its profile is a fresh temporary directory under
// TMPDIR, removed on close).

import { chromium } from "playwright-core";
import { readFileSync, statSync } from "node:fs";
import { createInterface } from "node:readline";

const CHROMIUM = process.env.DRIVE_CHROMIUM || "/usr/bin/chromium";
const OVERALL_MS = Number(process.env.DRIVE_TIMEOUT_MS || 120_000);
const STEP_MS = Number(process.env.DRIVE_STEP_TIMEOUT_MS || 20_000);

// Chromium runs as root (hence no sandbox), headless, with nothing reaching out to the network on
// its own (this machine's network is closed: a background fetch would only stall or log noise) and
// no proxy from the environment. playwright adds most of these too (and a fresh --user-data-dir);
// they are listed so that they are there whatever playwright's defaults become.
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-proxy-server",
];

let browser = null;
let context = null;
/** name → {page, log: [lines]} */
const pages = new Map();

/** Set once the run is ending: a step still under way when the overall timeout fired answers no more. */
let ending = false;

/** Print one answer line (stdout to a pipe is synchronous in Node on Linux: nothing is lost on exit). */
function answer(obj) {
  if (!ending) process.stdout.write(JSON.stringify(obj) + "\n");
}

/** Close Chromium (bounded: a wedged browser is killed by playwright's own handlers on exit). */
async function closeBrowser() {
  const b = browser;
  browser = null;
  if (b) await Promise.race([b.close().catch(() => {}), sleep(5000)]);
}

async function exit(code) {
  await closeBrowser();
  process.exit(code);
}

/** Report a failure and end the run. */
async function fail(message, code = 1) {
  if (ending) return;
  answer({ ok: false, error: message });
  ending = true;
  process.stderr.write(`drive.mjs: ${message}\n`);
  await exit(code);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The named page, opened on first use; what it logs is kept for `console` and failure messages. */
async function page(name) {
  let p = pages.get(name);
  if (!p) {
    const page = await context.newPage();
    p = { page, log: [] };
    page.on("console", (m) => p.log.push(`${m.type()}: ${m.text()}`));
    page.on("pageerror", (e) => p.log.push(`pageerror: ${e.message}`));
    pages.set(name, p);
  }
  return p;
}

/** The actions: each gets the step's argument, the whole step, its page, its timeout and what the
 * page logged. */
const actions = {
  async goto(url, _s, page, timeout) {
    const r = await page.goto(url, { timeout });
    return { status: r ? r.status() : null, url: page.url() };
  },
  async status(url, _s, page, timeout) {
    // Chromium shows its error page (chrome-error://chromewebdata/) after goto has thrown: a step
    // run before that page has loaded would find its page gone. So its load is waited for.
    let loaded;
    const load = new Promise((resolve) => (loaded = resolve));
    page.once("load", loaded);
    try {
      const r = await page.goto(url, { timeout });
      return r ? r.status() : null;
    } catch (e) {
      // Nothing answered (refused, reset, ...): Chromium's error is the answer, not a failure.
      const net = /net::ERR_[A-Z_]+/.exec(e.message);
      if (!net) throw e;
      await Promise.race([load, sleep(5000)]);
      return net[0];
    } finally {
      page.off("load", loaded);
    }
  },
  async text(sel, _s, page, timeout) {
    return await page.locator(sel).textContent({ timeout });
  },
  async wait_text(sel, s, page, timeout) {
    if (typeof s.contains !== "string") throw new Error("wait_text needs `contains` (a string)");
    // Polled from here rather than in the page, so that a timeout can say what the text was.
    const deadline = Date.now() + timeout;
    let last = null;
    let why = "";
    for (;;) {
      const left = deadline - Date.now();
      last = await page
        .locator(sel)
        .textContent({ timeout: Math.max(left, 1) })
        .then((text) => ((why = ""), text))
        // Why it could not be read (a selector matching two elements, ...), over a mere timeout.
        .catch((e) => {
          if (!why || !/Timeout \d+ms exceeded/.test(e.message)) why = e.message.split("\n")[0];
          return last;
        });
      if (last !== null && last.includes(s.contains)) return last;
      if (Date.now() >= deadline) {
        throw new Error(
          `timed out after ${timeout} ms waiting for ${sel} to contain ${JSON.stringify(s.contains)}; ` +
            `its text: ${JSON.stringify(last)}${why ? ` (${why})` : ""}`,
        );
      }
      await sleep(100);
    }
  },
  async eval(js, _s, page) {
    return await page.evaluate(js);
  },
  async wait_js(js, _s, page, timeout) {
    const handle = await page.waitForFunction(js, null, { timeout, polling: 100 });
    return await handle.jsonValue();
  },
  async click(sel, _s, page, timeout) {
    await page.locator(sel).click({ timeout });
    return null;
  },
  async cookies(url) {
    return await context.cookies(url);
  },
  async screenshot(path, s, page, timeout) {
    await page.screenshot({ path, fullPage: !!s.full_page, timeout });
    return { path, bytes: statSync(path).size };
  },
  async console(_v, _s, _page, _t, log) {
    return log;
  },
};

/** Run one step; its value, or a thrown error saying what went wrong. */
async function run(step) {
  if (step === null || typeof step !== "object" || Array.isArray(step)) {
    throw new Error(`a step is an object, got ${JSON.stringify(step)}`);
  }
  const names = Object.keys(step).filter((k) => k in actions);
  if (names.length !== 1) {
    throw new Error(
      `a step has exactly one action of ${Object.keys(actions).join(", ")}: ${JSON.stringify(step)}`,
    );
  }
  const [name] = names;
  const timeout = Number(step.timeout_ms ?? STEP_MS);
  const p = await page(String(step.page ?? "main"));
  // Every action is bounded, even those playwright does not bound (`eval` of a promise that never
  // settles): a second past its timeout, the step fails.
  let timer;
  const guard = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer after ${timeout} ms`)), timeout + 1000);
  });
  try {
    return await Promise.race([actions[name](step[name], step, p.page, timeout, p.log), guard]);
  } catch (e) {
    const log = p.log.slice(-10).map((l) => `\n    ${l}`).join("");
    // playwright colours its call logs.
    const message = String(e.message).replace(/\x1b\[[0-9;]*m/g, "");
    throw new Error(
      `step ${JSON.stringify(step)} failed on page ${JSON.stringify(step.page ?? "main")} ` +
        `(at ${p.page.url()}): ${message}${log ? `\n  the page's last console lines:${log}` : ""}`,
    );
  } finally {
    clearTimeout(timer);
  }
}

/** Run steps in order, one answer line each; the first failure ends the run. */
async function runAll(steps) {
  for (const step of steps) {
    let value;
    try {
      value = await run(step);
    } catch (e) {
      await fail(e.message);
    }
    answer({ ok: true, value: value === undefined ? null : value });
  }
}

process.on("SIGTERM", () => exit(143));
// A bug here still ends the run with an answer rather than a bare stack trace.
process.on("uncaughtException", (e) => fail(`internal error: ${e.stack || e}`));
process.on("unhandledRejection", (e) => fail(`internal error: ${(e && e.stack) || e}`));
// Whoever reads the answers has gone (the test ended or died): nobody to answer, stop.
process.stdout.on("error", () => exit(1));
process.on("SIGINT", () => exit(130));
const overall = setTimeout(
  () => fail(`the whole run took longer than DRIVE_TIMEOUT_MS (${OVERALL_MS} ms)`, 2),
  OVERALL_MS,
);
// A finished batch need not wait for it.
overall.unref();

try {
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    chromiumSandbox: false,
    args: ARGS,
    timeout: 30_000,
  });
  context = await browser.newContext();
} catch (e) {
  await fail(`cannot launch ${CHROMIUM}: ${e.message}`);
}

if (process.argv[2]) {
  let steps;
  try {
    steps = JSON.parse(readFileSync(process.argv[2] === "-" ? 0 : process.argv[2], "utf8"));
    if (!Array.isArray(steps)) throw new Error("not a JSON array of steps");
  } catch (e) {
    await fail(`${process.argv[2]}: ${e.message}`);
  }
  await runAll(steps);
} else {
  // `for await` takes the lines one at a time: a step starts once the one before has answered.
  for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
    if (!line.trim()) continue;
    let input;
    try {
      input = JSON.parse(line);
    } catch (e) {
      await fail(`not JSON (${e.message}): ${line}`);
    }
    await runAll(Array.isArray(input) ? input : [input]);
  }
}
await exit(0);
