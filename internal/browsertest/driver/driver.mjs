// Drives one browser (Chromium or Firefox) for the Go tests in
// internal/browsertest, through puppeteer-core: CDP for Chromium, WebDriver
// BiDi for Firefox. It talks JSON lines on stdin/stdout, so a test can run
// it inside a network namespace (`ip netns exec ns node driver.mjs`) where
// no DevTools port of the test's own namespace would reach.
//
// Requests:  {"id": 1, "op": "open", "url": "...", "before": ["js", ...]}
//            {"id": 2, "op": "eval", "page": 1, "expr": "js expression"}
//            {"id": 3, "op": "close", "page": 1}
// Responses: {"id": 1, "value": ...} or {"id": 1, "error": "..."}
// First line out: {"ready": true, "version": "..."}. stdin closed: the
// browser closes and the driver exits. Page console lines and errors go
// to stderr, prefixed with the page number.
import puppeteer from 'puppeteer-core';
import readline from 'node:readline';

const opts = JSON.parse(process.argv[2] || '{}');

// Flags from the team's testing notes: headless as root on a machine with
// no outside network, tabs at full speed in the background.
const chromiumArgs = [
  '--no-sandbox', '--disable-gpu', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--disable-background-timer-throttling', '--disable-renderer-backgrounding',
  '--disable-backgrounding-occluded-windows', '--disable-dev-shm-usage', '--disable-quic',
];

function launchOptions() {
  if (opts.kind === 'firefox') {
    const prefs = {
      // No update, telemetry or remote settings traffic: the machine has no outside network.
      'app.update.enabled': false,
      'datareporting.policy.dataSubmissionEnabled': false,
      'toolkit.telemetry.enabled': false,
      'network.captive-portal-service.enabled': false,
    };
    if (!opts.realNetwork) {
      // Loopback-only tests: Firefox's equivalents of Chromium's loopback flags.
      prefs['media.peerconnection.ice.loopback'] = true;
      prefs['media.peerconnection.ice.obfuscate_host_addresses'] = false;
    }
    return {
      browser: 'firefox',
      executablePath: opts.executable || '/usr/bin/firefox-esr',
      headless: true,
      userDataDir: opts.userDataDir,
      acceptInsecureCerts: !!opts.ignoreCertificateErrors,
      extraPrefsFirefox: prefs,
    };
  }
  const args = [...chromiumArgs];
  if (!opts.realNetwork) args.push('--allow-loopback-in-peer-connection');
  if (opts.ignoreCertificateErrors) args.push('--ignore-certificate-errors');
  return {
    executablePath: opts.executable || '/usr/bin/chromium',
    headless: true,
    pipe: true,
    userDataDir: opts.userDataDir,
    acceptInsecureCerts: !!opts.ignoreCertificateErrors,
    args,
  };
}

const send = (msg) => process.stdout.write(JSON.stringify(msg) + '\n');
const log = (line) => process.stderr.write(line + '\n');

const browser = await puppeteer.launch(launchOptions());
const pages = new Map();
let nextPage = 1;

async function open({url, before = []}) {
  const page = await browser.newPage();
  const n = nextPage++;
  pages.set(n, page);
  page.on('console', (m) => log(`[page ${n}] console.${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => log(`[page ${n}] error: ${e && e.message}${e && e.stack ? "\n    " + String(e.stack).split("\n").slice(0, 4).join("\n    ") : ""}`));
  for (const src of before) await page.evaluateOnNewDocument(src);
  await page.goto(url, {waitUntil: 'load'});
  return n;
}

async function evaluate({page, expr}) {
  const p = pages.get(page);
  if (!p) throw new Error(`no page ${page}`);
  // Stringified in the page so any JSON value (and undefined as null)
  // crosses both protocols the same way.
  const out = await p.evaluate(`(async () => { const v = await (${expr}\n); return v === undefined ? 'null' : JSON.stringify(v); })()`);
  return JSON.parse(out);
}

async function close({page}) {
  const p = pages.get(page);
  pages.delete(page);
  if (p) await p.close();
  return null;
}

const ops = {open, eval: evaluate, close};

const rl = readline.createInterface({input: process.stdin});
rl.on('line', async (line) => {
  let req;
  try {
    req = JSON.parse(line);
  } catch (e) {
    log(`driver: bad request line: ${line}`);
    return;
  }
  const op = ops[req.op];
  if (!op) return send({id: req.id, error: `unknown op ${req.op}`});
  try {
    send({id: req.id, value: await op(req)});
  } catch (e) {
    send({id: req.id, error: String(e && e.message || e)});
  }
});
rl.on('close', async () => {
  await browser.close().catch(() => {});
  process.exit(0);
});

send({ready: true, version: await browser.version()});
