#!/usr/bin/env node
// browser-login.mjs — drives headless Chromium (/usr/bin/chromium, through playwright-core)
// through a real idgate login, as a person would, for idgate's end-to-end tests.
//
// Usage:
//   node tests/js/browser-login.mjs --url http://127.0.0.1:NGINXPORT/some/page?x=1 \
//     --login alice [--password pw] [--timeout-ms 20000] [--hold-assets] [--no-javascript]
//     [--expect URL]
//
// With a fresh, throw-away browser profile it opens --url. The protected site redirects to
// idgate's /authorize, which redirects to the development IdP's login form (tests/js/idp.mjs:
// inputs name="login" and name="password"). The form is filled in and submitted; the IdP
// redirects to idgate's callback page, whose script exchanges the code and navigates back to
// the original URL. Done when the page's path+query equal those of --url again and the page
// has loaded (all within --timeout-ms, default 20 s).
//
// --hold-assets: requests for idgate's static files (/web-login/static/) are left unanswered
// until the browser has sent POST /oauth/token. A callback page whose code exchange waited for
// one of them (an external script, an inline one behind a stylesheet) never gets there, and
// the run fails: the exchange is then proven to be the only round trip the page adds.
// --expect URL: done when the page is at URL (scheme, host, port, path and query) instead:
// a login started at /authorize whose target is another origin.
// --no-javascript: JavaScript is off in the browser; the callback page's form is submitted
// with its "Continue" button (the no-JavaScript end of the login, POST /web-login/finish).
//
// Requests to hosts other than loopback (127.0.0.0/8, localhost, [::1]) are blocked and
// reported in blockedRequests.
//
// stdout, one line of JSON:
//   success (exit 0): {"finalUrl": "...", "body": "<document.body.innerText>",
//                      "cookies": ["cookie names in the browser context"],
//                      "requests": [{"method", "path", "type"}] (every loopback request the
//                      browser made, in order; path with its query; type the resource type),
//                      "consoleErrors": ["..."], "pageErrors": ["..."], "blockedRequests": ["..."]}
//     consoleErrors holds console messages of type error (including Chromium's own, e.g.
//     "Refused to ... Content Security Policy", failed resource loads) and CSP violations seen
//     by a securitypolicyviolation listener, on every page of the flow (IdP pages included).
//   failure (exit 1): {"error": "...", "url": "<current page url>",
//                      "html": "<first 2000 chars of the page>", "consoleErrors": [...],
//                      "pageErrors": [...], "blockedRequests": [...]}
//   usage error (exit 2): message on stderr.
// The browser is always closed and the temporary profile removed.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';

function usage(msg) {
  process.stderr.write(`browser-login.mjs: ${msg}\n`
    + 'usage: node browser-login.mjs --url URL --login LOGIN [--password PW] [--timeout-ms MS]\n');
  process.exit(2);
}

let args;
try {
  ({ values: args } = parseArgs({
    options: {
      url: { type: 'string' },
      login: { type: 'string' },
      password: { type: 'string', default: 'password' },
      'timeout-ms': { type: 'string', default: '20000' },
      'hold-assets': { type: 'boolean', default: false },
      'no-javascript': { type: 'boolean', default: false },
      expect: { type: 'string' },
    },
    strict: true,
  }));
} catch (err) {
  usage(err.message);
}
if (!args.url) usage('--url is required');
if (!args.login) usage('--login is required');
let target;
try {
  target = new URL(args.url);
} catch {
  usage(`--url is not an absolute URL: ${args.url}`);
}
const timeoutMs = Number(args['timeout-ms']);
if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) usage(`bad --timeout-ms ${args['timeout-ms']}`);

const deadline = Date.now() + timeoutMs;
const remaining = () => Math.max(1, deadline - Date.now());
const pathAndQuery = (u) => u.pathname + u.search;
const wanted = pathAndQuery(target);
let expected;
try {
  expected = args.expect ? new URL(args.expect).href : undefined;
} catch {
  usage(`--expect is not an absolute URL: ${args.expect}`);
}
const arrived = (u) => (expected ? u.href === expected : pathAndQuery(u) === wanted);

const consoleErrors = [];
const pageErrors = [];
const blockedRequests = [];
const requests = [];
// Asset requests held until the code exchange was sent (--hold-assets).
const heldAssets = [];
let exchangeSent = false;

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|localhost|\[::1\])$/i;

let profileDir;
let context;
let page;
let finished = false;

function emit(obj) {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

async function cleanup() {
  if (context) {
    const ctx = context;
    context = undefined;
    await Promise.race([
      ctx.close().catch(() => {}),
      new Promise((resolve) => { setTimeout(resolve, 5000).unref(); }),
    ]);
  }
  if (profileDir) {
    fs.rmSync(profileDir, { recursive: true, force: true, maxRetries: 3 });
    profileDir = undefined;
  }
}

async function failure(err) {
  let url = '';
  let html = '';
  try {
    if (page) {
      url = page.url();
      html = (await Promise.race([
        page.content(),
        new Promise((resolve) => { setTimeout(() => resolve(''), 3000).unref(); }),
      ])).slice(0, 2000);
    }
  } catch {
    // the page may be gone
  }
  return {
    // playwright's messages carry ANSI colour codes: drop them.
    // eslint-disable-next-line no-control-regex
    error: (err instanceof Error ? err.message : String(err)).replace(/\u001b\[[0-9;]*m/g, ''),
    url,
    html,
    consoleErrors,
    pageErrors,
    blockedRequests,
  };
}

function watchPage(p) {
  p.on('console', (msg) => {
    if (msg.type() === 'error') {
      const where = msg.location()?.url || p.url();
      consoleErrors.push(`${msg.text()} (at ${where})`);
    }
  });
  p.on('pageerror', (err) => {
    pageErrors.push(`${err.message} (at ${p.url()})`);
  });
}

async function run() {
  profileDir = fs.mkdtempSync(path.join(os.tmpdir(), 'idgate-browser-'));
  context = await chromium.launchPersistentContext(profileDir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    javaScriptEnabled: !args['no-javascript'],
    handleSIGINT: false,
    handleSIGTERM: false,
    handleSIGHUP: false,
    timeout: remaining(),
  });
  context.setDefaultTimeout(timeoutMs);
  context.setDefaultNavigationTimeout(timeoutMs);

  await context.route('**/*', (route) => {
    const reqUrl = route.request().url();
    let host = '';
    try {
      host = new URL(reqUrl).hostname;
    } catch {
      // not a URL with a host
    }
    if (host === '' || LOOPBACK.test(host)) {
      const { pathname } = new URL(reqUrl);
      if (pathname === '/oauth/token' && route.request().method() === 'POST') {
        exchangeSent = true;
        heldAssets.splice(0).forEach((r) => r.continue().catch(() => {}));
      }
      if (args['hold-assets'] && !exchangeSent && pathname.startsWith('/web-login/static/')) {
        heldAssets.push(route);
        return undefined;
      }
      return route.continue();
    }
    blockedRequests.push(reqUrl);
    return route.abort('blockedbyclient');
  });

  await context.exposeBinding('__idgateCspViolation', ({ page: p }, v) => {
    consoleErrors.push(`CSP violation: ${v.directive} blocked ${v.blocked || '(inline)'}`
      + ` (at ${v.source || p?.url() || ''}${v.line ? `:${v.line}` : ''})`);
  });
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      // eslint-disable-next-line no-underscore-dangle
      window.__idgateCspViolation?.({
        directive: e.effectiveDirective || e.violatedDirective,
        blocked: e.blockedURI,
        source: e.sourceFile || document.location.href,
        line: e.lineNumber,
      });
    });
  });

  context.on('request', (req) => {
    try {
      const u = new URL(req.url());
      if (LOOPBACK.test(u.hostname)) {
        requests.push({ method: req.method(), path: u.pathname + u.search, type: req.resourceType() });
      }
    } catch {
      // not a URL with a host
    }
  });
  context.on('page', watchPage);
  page = context.pages()[0] ?? await context.newPage();
  watchPage(page);

  await page.goto(target.href, { waitUntil: 'load', timeout: remaining() });

  // The IdP's login form.
  const loginInput = page.locator('form input[name="login"]');
  await loginInput.waitFor({ state: 'visible', timeout: remaining() });
  await loginInput.fill(args.login, { timeout: remaining() });
  await page.locator('form input[name="password"]').fill(args.password, { timeout: remaining() });
  await page.locator('form:has(input[name="login"]) [type="submit"]').first()
    .click({ timeout: remaining() });

  if (args['no-javascript']) {
    // IdP -> idgate callback page, whose form (shown without JavaScript) the person submits.
    const button = page.locator('form#finish button[type="submit"]');
    await button.waitFor({ state: 'visible', timeout: remaining() });
    await button.click({ timeout: remaining() });
  }
  // IdP -> idgate callback page -> (script, or the form) original URL.
  await page.waitForURL(arrived, {
    waitUntil: 'load',
    timeout: remaining(),
  });

  // Read through the driver's own world: it works with the page's JavaScript off too.
  const body = await page.locator('body').innerText({ timeout: remaining() });
  const cookies = (await context.cookies()).map((c) => c.name);
  return {
    finalUrl: page.url(),
    body,
    cookies,
    requests,
    consoleErrors,
    pageErrors,
    blockedRequests,
  };
}

async function stopOnSignal(signal) {
  if (finished) return;
  finished = true;
  const out = await failure(new Error(`killed by ${signal}`));
  await cleanup();
  emit(out);
  process.exit(1);
}
process.on('SIGTERM', () => { stopOnSignal('SIGTERM'); });
process.on('SIGINT', () => { stopOnSignal('SIGINT'); });

let code;
let out;
try {
  out = await run();
  code = 0;
} catch (err) {
  out = await failure(err);
  code = 1;
}
if (!finished) {
  finished = true;
  heldAssets.splice(0).forEach((r) => r.abort().catch(() => {}));
  await cleanup();
  emit(out);
  process.exit(code);
}
