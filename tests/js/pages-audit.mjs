#!/usr/bin/env node
// pages-audit.mjs — opens idgate's login pages in headless Chromium (/usr/bin/chromium, through
// playwright-core), as a person would, and reports what the quality bar of issue 16 asks:
// console errors and CSP violations, requests to other hosts, horizontal overflow, keyboard
// reach, an axe-core audit (WCAG 2.0/2.1 A and AA) and the bytes the page took on the wire.
//
// Usage:
//   node tests/js/pages-audit.mjs --spec SPEC.json [--screenshots DIR] [--timeout-ms 30000]
//
// SPEC.json: [{"name": "chooser", "url": "http://127.0.0.1:PORT/web-login?appId=web",
//              "javascript": true, "hold": "/oauth/token"}]
//   javascript (default true): false opens the page with JavaScript off (the no-JS fallback):
//   it is loaded, watched (console, requests, bytes) and photographed so. The driver cannot
//   evaluate anything in such a page, so the checks that need it (layout, keyboard, axe-core)
//   then run on the page as a browser without JavaScript renders it: the same response, its
//   headers (CSP) kept, with its <script> elements removed and its <noscript> contents shown,
//   in a context where the driver can run ("nojsView": true in the result).
//   click: a selector clicked once the page is checked, when the page has one; the result's
//   "clicked" is then {"before": N, "after": N}: how many elements matched before the click and
//   once the page has loaded again (a page whose button reloads it).
//   cookies: [{"name", "value", "url"}] set in the browser first (a signed-in person's session).
//   hold: a path whose requests are left unanswered while the page is checked (so the callback
//   page is seen in its "signing you in" state).
// Every page is opened in English and Italian (the browser's locale, hence Accept-Language),
// at 320x640 and at 1280x800, each in a fresh browser context (nothing cached).
//
// stdout, one line of JSON: {"results": [{"name", "lang", "viewport", "status", "htmlLang",
//   "consoleErrors": [], "pageErrors": [], "foreignRequests": [], "overflowX": false,
//   "unreachable": [], "noFocusRing": [], "violations": [{"id", "impact", "nodes"}],
//   "bytes": N, "screenshot": "path or null"}]}
// Chromium's own "Failed to load resource: ... status of 4xx" line for the page's document
// itself (an error page answers with its error status on purpose) is not a console error of the
// page and is left out; any other is kept.
// Exit 0 when the run completed (the caller judges the results), 1 on a failure to run, 2 on
// a usage error.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const AXE_SOURCE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

function usage(msg) {
  process.stderr.write(`pages-audit.mjs: ${msg}\n`
    + 'usage: node pages-audit.mjs --spec SPEC.json [--screenshots DIR] [--timeout-ms MS]\n');
  process.exit(2);
}

let args;
try {
  ({ values: args } = parseArgs({
    options: {
      spec: { type: 'string' },
      screenshots: { type: 'string' },
      'timeout-ms': { type: 'string', default: '30000' },
    },
    strict: true,
  }));
} catch (err) {
  usage(err.message);
}
if (!args.spec) usage('--spec is required');
const pages = JSON.parse(fs.readFileSync(args.spec, 'utf8'));
const timeoutMs = Number(args['timeout-ms']);
if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) usage(`bad --timeout-ms ${args['timeout-ms']}`);
if (args.screenshots) fs.mkdirSync(args.screenshots, { recursive: true });

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|localhost|\[::1\])$/i;
const VIEWPORTS = [
  { name: 'narrow', width: 320, height: 640 },
  { name: 'wide', width: 1280, height: 800 },
];
const LANGS = [
  { lang: 'en', locale: 'en-US' },
  { lang: 'it', locale: 'it-IT' },
];

// The page as a browser without JavaScript shows it: no script elements, <noscript> unwrapped.
function withoutJavaScript(html) {
  return html
    .replace(/<script\b[^>]*>[\s\S]*?<\/script>/gi, '')
    .replace(/<\/?noscript>/gi, '');
}

async function auditOne(browser, spec, { lang, locale }, viewport) {
  if (spec.javascript === false) {
    // Loaded with JavaScript off (watched, photographed), then checked as rendered so.
    const off = await auditOne(browser, { ...spec, javascript: 'off' }, { lang, locale }, viewport);
    const view = await auditOne(browser, { ...spec, javascript: true, nojsView: true },
      { lang, locale }, viewport);
    return {
      ...view,
      nojsView: true,
      status: off.status,
      consoleErrors: [...off.consoleErrors, ...view.consoleErrors],
      pageErrors: [...off.pageErrors, ...view.pageErrors],
      foreignRequests: [...off.foreignRequests, ...view.foreignRequests],
      bytes: off.bytes,
      screenshot: off.screenshot,
    };
  }
  const context = await browser.newContext({
    locale,
    viewport: { width: viewport.width, height: viewport.height },
    javaScriptEnabled: spec.javascript !== 'off',
  });
  context.setDefaultTimeout(timeoutMs);
  const consoleErrors = [];
  const pageErrors = [];
  const foreignRequests = [];
  const sizes = [];
  const held = [];
  try {
    await context.route('**/*', (route) => {
      const url = new URL(route.request().url());
      if (url.hostname !== '' && !LOOPBACK.test(url.hostname)) {
        foreignRequests.push(url.href);
        return route.abort('blockedbyclient');
      }
      if (spec.hold && url.pathname === spec.hold) {
        held.push(route);
        return undefined;
      }
      if (spec.nojsView && url.href === spec.url) {
        return route.fetch().then(async (response) => route.fulfill({
          response,
          body: withoutJavaScript(await response.text()),
        }));
      }
      return route.continue();
    });
    await context.exposeBinding('__idgateCspViolation', (_src, v) => {
      consoleErrors.push(`CSP violation: ${v.directive} blocked ${v.blocked || '(inline)'}`);
    });
    await context.addInitScript(() => {
      document.addEventListener('securitypolicyviolation', (e) => {
        // eslint-disable-next-line no-underscore-dangle
        window.__idgateCspViolation?.({
          directive: e.effectiveDirective || e.violatedDirective,
          blocked: e.blockedURI,
        });
      });
    });
    if (spec.cookies) await context.addCookies(spec.cookies);
    const page = await context.newPage();
    page.on('console', (msg) => {
      if (msg.type() !== 'error') return;
      const where = msg.location()?.url || '';
      const own = /^Failed to load resource: the server responded with a status of 4\d\d/
        .test(msg.text()) && where === spec.url;
      if (!own) consoleErrors.push(`${msg.text()} (at ${where})`);
    });
    page.on('pageerror', (err) => pageErrors.push(err.message));
    page.on('requestfinished', (req) => {
      sizes.push(req.sizes()
        .then((s) => s.responseBodySize + s.responseHeadersSize, () => 0));
    });
    const response = await page.goto(spec.url, { waitUntil: 'load' });
    const status = response ? response.status() : 0;
    if (spec.hold) {
      // The page's own request is held: wait until it was made, not for the network to idle.
      for (let i = 0; i < 100 && held.length === 0; i += 1) {
        await new Promise((resolve) => { setTimeout(resolve, 50); });
      }
      if (spec.javascript !== 'off' && held.length === 0) {
        throw new Error(`${spec.name}: the page never requested ${spec.hold}`);
      }
    } else {
      await page.waitForLoadState('networkidle').catch(() => {});
    }
    const bytes = (await Promise.all(sizes)).reduce((a, b) => a + b, 0);

    if (spec.javascript === 'off') {
      // Without JavaScript the driver can evaluate nothing: the page is only loaded, watched
      // and photographed here (see withoutJavaScript for the rest).
      let screenshot = null;
      if (args.screenshots) {
        screenshot = path.join(args.screenshots, `${spec.name}-${lang}-${viewport.name}.png`);
        await page.screenshot({ path: screenshot, fullPage: true });
      }
      return {
        name: spec.name,
        lang,
        viewport: viewport.name,
        status,
        audited: false,
        consoleErrors,
        pageErrors,
        foreignRequests,
        bytes,
        screenshot,
      };
    }
    const layout = await page.evaluate(() => ({
      htmlLang: document.documentElement.lang,
      overflowX: document.documentElement.scrollWidth > window.innerWidth,
    }));

    // Keyboard: every visible control is reached with Tab, and shows where the focus is.
    const keyboard = await page.evaluate(() => {
      const sel = 'a[href], button, input:not([type="hidden"]), select, textarea, [tabindex]';
      const all = [...document.querySelectorAll(sel)].filter((el) => {
        const r = el.getBoundingClientRect();
        return el.tabIndex >= 0 && (r.width > 0 || el.classList.contains('skip'));
      });
      all.forEach((el, i) => el.setAttribute('data-audit-id', String(i)));
      return all.length;
    });
    const reached = new Set();
    const noFocusRing = [];
    for (let i = 0; i < keyboard + 3; i += 1) {
      await page.keyboard.press('Tab');
      const focus = await page.evaluate(() => {
        const el = document.activeElement;
        if (!el || el === document.body) return null;
        const style = getComputedStyle(el);
        return {
          id: el.getAttribute('data-audit-id'),
          ring: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0,
          what: `${el.tagName.toLowerCase()} ${el.textContent.trim().slice(0, 40)}`,
        };
      });
      if (focus && focus.id !== null) {
        reached.add(focus.id);
        if (!focus.ring) noFocusRing.push(focus.what);
      }
    }
    const unreachable = await page.evaluate((ids) => [...document.querySelectorAll('[data-audit-id]')]
      .filter((el) => !ids.includes(el.getAttribute('data-audit-id')))
      .map((el) => `${el.tagName.toLowerCase()} ${el.textContent.trim().slice(0, 40)}`), [...reached]);
    await page.evaluate(() => document.activeElement?.blur());

    let screenshot = null;
    if (args.screenshots && !spec.click && !spec.nojsView) {
      screenshot = path.join(args.screenshots, `${spec.name}-${lang}-${viewport.name}.png`);
      await page.screenshot({ path: screenshot, fullPage: true });
    }

    // axe-core, evaluated through the driver (the page's CSP stays on for the page itself).
    await page.evaluate(AXE_SOURCE);
    const axe = await page.evaluate(() => window.axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'] },
    }).then((r) => r.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 5),
    }))));

    let clicked = null;
    if (spec.click) {
      const before = await page.locator(spec.click).count();
      if (before > 0) {
        await Promise.all([
          page.waitForEvent('load'),
          page.locator(spec.click).first().click(),
        ]);
        clicked = { before, after: await page.locator(spec.click).count() };
      }
    }

    return {
      name: spec.name,
      lang,
      viewport: viewport.name,
      status,
      audited: true,
      clicked,
      htmlLang: layout.htmlLang,
      // Copies: what happens once the page is checked (its held request ended) is not counted.
      consoleErrors: [...consoleErrors],
      pageErrors: [...pageErrors],
      foreignRequests: [...foreignRequests],
      overflowX: layout.overflowX,
      unreachable,
      noFocusRing,
      controls: keyboard,
      violations: axe,
      bytes,
      screenshot,
    };
  } finally {
    await context.close().catch(() => {});
    held.forEach((r) => r.abort().catch(() => {}));
  }
}

let browser;
let code = 0;
try {
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: timeoutMs,
  });
  const results = [];
  for (const spec of pages) {
    for (const lang of LANGS) {
      for (const viewport of VIEWPORTS) {
        results.push(await auditOne(browser, spec, lang, viewport));
      }
    }
  }
  process.stdout.write(`${JSON.stringify({ results })}\n`);
} catch (err) {
  process.stdout.write(`${JSON.stringify({ error: String(err && err.stack || err) })}\n`);
  code = 1;
} finally {
  if (browser) await browser.close().catch(() => {});
}
process.exit(code);
