#!/usr/bin/env node
// Drives a code-server workbench in headless Chromium through a list of JSON steps and prints
// one JSON result, so pytest can script a flow and assert on what came back.
//
//   node drive.mjs SCRIPT.json        (or "-" for stdin)
//
// SCRIPT: {"url": "http://127.0.0.1:PORT/?folder=/ws", "steps": [{"do": "...", ...}, ...],
//          "failureScreenshot": "/tmp/fail.png", "timeoutMs": 20000}
// Output: {"ok": bool, "results": [{"do", "ok", "value"?, "error"?, "ms"}], "error"?}
// Exit code 0 when every step passed, 1 when one failed (the rest are not run), 2 on bad usage.
//
// playwright-core is loaded with require() so NODE_PATH (set from setup.sh's e2e.env) finds it.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';

const require = createRequire(import.meta.url);
const { chromium } = require('playwright-core');

const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-dev-shm-usage',
];
const QUICK_INPUT = '.quick-input-widget';
const QUICK_ROW = `${QUICK_INPUT} .monaco-list-row`;

/** Visible text of the quick input rows' labels. */
async function quickRows(page) {
  return page.$$eval(QUICK_ROW, (rows) => rows.map((r) => r.getAttribute('aria-label') || r.textContent || ''));
}

/** Wait for a quick input row whose label contains `text`, then return it. */
async function quickRow(page, text, timeout) {
  const row = page.locator(QUICK_ROW).filter({ hasText: text }).first();
  await row.waitFor({ state: 'visible', timeout });
  return row;
}

async function openQuickInput(page, key, text, timeout) {
  // Escape only closes a leftover quick input: in the editor it would drop the selection.
  if (await page.locator(QUICK_INPUT).isVisible()) {
    await page.keyboard.press('Escape');
  }
  await page.keyboard.press(key);
  await page.locator(`${QUICK_INPUT} input`).waitFor({ state: 'visible', timeout });
  await page.keyboard.type(text);
}

/** Text of an editor's lines (all of them for files that fit on screen), in order. */
async function editorText(page, root) {
  return page.$eval(root, (el) => {
    const lines = [...el.querySelectorAll('.view-lines .view-line')];
    lines.sort((a, b) => parseFloat(a.style.top) - parseFloat(b.style.top));
    return lines.map((l) => (l.textContent || '').replace(/\u00a0/g, ' ')).join('\n');
  });
}

async function statusItems(page) {
  return page.$$eval('.statusbar .statusbar-item', (items) =>
    items.map((i) => (i.textContent || '').trim()).filter((t) => t !== ''),
  );
}

/** Poll `read` until `ok(value)` holds or the timeout passes; returns the last value. */
async function until(read, ok, timeout, what) {
  const end = Date.now() + timeout;
  let value = await read();
  while (!ok(value)) {
    if (Date.now() > end) {
      throw new Error(`timed out waiting for ${what}; last seen: ${JSON.stringify(value)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
    value = await read();
  }
  return value;
}

const STEPS = {
  /** Open the workbench and wait until it and the status bar are up. */
  async open(page, s, t) {
    await page.goto(s.url, { timeout: t });
    await page.locator('.monaco-workbench').waitFor({ timeout: t });
    await page.locator('.statusbar').waitFor({ timeout: t });
  },
  /** Quick Open (Ctrl+P) a workspace-relative path and wait for its tab. */
  async openFile(page, s, t) {
    await page.locator('.monaco-workbench').click({ position: { x: 5, y: 5 } }).catch(() => {});
    await openQuickInput(page, 'Control+P', s.path, t);
    const name = s.path.split('/').pop();
    await quickRow(page, name, t);
    await page.keyboard.press('Enter');
    await page.locator('.tab.active', { hasText: name }).waitFor({ timeout: t });
    await page.locator('.editor-instance .monaco-editor .view-lines').first().waitFor({ timeout: t });
    return name;
  },
  /** Select whole lines `from`..`to` (1-based, inclusive) in the active editor. */
  async selectLines(page, s, t) {
    await page.locator('.editor-instance .monaco-editor .view-lines').first().click();
    await openQuickInput(page, 'Control+G', String(s.from), t);
    await page.keyboard.press('Enter');
    await page.locator(QUICK_INPUT).waitFor({ state: 'hidden', timeout: t });
    await page.keyboard.press('Home');
    for (let i = s.from; i <= s.to; i++) {
      await page.keyboard.press('Shift+ArrowDown');
    }
  },
  /** Run a command palette command by its title. */
  async command(page, s, t) {
    await openQuickInput(page, 'F1', s.title, t);
    const row = await quickRow(page, s.title, t);
    await row.click();
    // The palette closes, or the command reuses the widget for its own prompt: either way
    // the next step must not see the palette's ">title" text.
    const read = () =>
      page.$eval(`${QUICK_INPUT}`, (w) => {
        const input = w.querySelector('input');
        return w.style.display === 'none' || !input ? '' : input.value;
      }).catch(() => '');
    await until(read, (v) => !v.startsWith('>'), t, 'the command palette to close');
  },
  /** Palette labels matching `title` (the palette is closed again); fails when none matches. */
  async paletteHas(page, s, t) {
    await openQuickInput(page, 'F1', s.title, t);
    await quickRow(page, s.title, t);
    const rows = await quickRows(page);
    await page.keyboard.press('Escape');
    return rows.filter((r) => r.includes(s.title));
  },
  /** Current value of the open input box (to see what it was prefilled with). */
  async inputValue(page, s, t) {
    const input = page.locator(`${QUICK_INPUT} input`);
    await input.waitFor({ state: 'visible', timeout: t });
    return input.inputValue();
  },
  /** Replace the open input box's text and press Enter (unless `enter` is false). */
  async type(page, s, t) {
    const input = page.locator(`${QUICK_INPUT} input`);
    await input.waitFor({ state: 'visible', timeout: t });
    await page.keyboard.press('Control+A');
    await page.keyboard.type(s.text);
    if (s.enter !== false) {
      await page.keyboard.press('Enter');
    }
  },
  /** Choose the quick pick item whose label contains `label`; returns all labels shown. */
  async pick(page, s, t) {
    const row = await quickRow(page, s.label, t);
    const rows = await quickRows(page);
    await row.click();
    return rows;
  },
  /** Status bar item texts; with `match` (a regex), wait for an item matching it and return it. */
  async statusBar(page, s, t) {
    if (!s.match) {
      return statusItems(page);
    }
    const re = new RegExp(s.match);
    const items = await until(() => statusItems(page), (v) => v.some((i) => re.test(i)), t, `status bar /${s.match}/`);
    return items.find((i) => re.test(i));
  },
  /** Wait for a notification containing `text`; returns all notification messages. */
  async notification(page, s, t) {
    const read = () => page.$$eval('.notification-list-item-message', (m) => m.map((e) => e.textContent || ''));
    return until(read, (v) => v.some((m) => m.includes(s.text)), t, `notification "${s.text}"`);
  },
  /** Wait for a diff editor (optionally with a tab title containing `title`) whose two sides show
   * text (each side's lines are drawn apart, after the editor appears; with `emptyOriginal`, only
   * the modified side); returns both sides' text. */
  async waitDiff(page, s, t) {
    if (s.title) {
      await page.locator('.tab.active', { hasText: s.title }).waitFor({ timeout: t });
    }
    await page.locator('.monaco-diff-editor').first().waitFor({ timeout: t });
    const read = async () => ({
      original: await editorText(page, '.monaco-diff-editor .editor.original'),
      modified: await editorText(page, '.monaco-diff-editor .editor.modified'),
    });
    return until(read, (v) => v.modified && (v.original || s.emptyOriginal), t, 'both sides of the diff');
  },
  /** Text of the active (non-diff) editor; with `contains`, wait until it contains that. */
  async editorText(page, s, t) {
    const root = '.editor-instance .monaco-editor';
    const read = () => editorText(page, root);
    return s.contains ? until(read, (v) => v.includes(s.contains), t, `editor text "${s.contains}"`) : read();
  },
  /** Wait for `selector` (state: visible | hidden | attached | detached); returns its text. */
  async wait(page, s, t) {
    const loc = page.locator(s.selector).first();
    await loc.waitFor({ state: s.state ?? 'visible', timeout: t });
    return s.state === 'hidden' || s.state === 'detached' ? null : loc.textContent();
  },
  /** Right-click `item` in the Explorer and choose `action` from its context menu. */
  async explorerMenu(page, s, t) {
    await page.keyboard.press('Control+Shift+E');
    const row = page.locator('.explorer-folders-view .monaco-list-row', { hasText: s.item }).first();
    await row.waitFor({ timeout: t });
    await row.click({ button: 'right' });
    const entry = page.locator('.context-view .action-label', { hasText: s.action }).first();
    await entry.waitFor({ timeout: t });
    await entry.hover();
    await entry.click();
    // A click that lands while the menu still lays itself out is dropped; the entry under the
    // mouse stays highlighted, and Enter runs it.
    const menu = page.locator('.context-view .monaco-menu').first();
    if (!(await menu.waitFor({ state: 'detached', timeout: 2000 }).then(() => true, () => false))) {
      await page.keyboard.press('Enter');
      await menu.waitFor({ state: 'detached', timeout: t });
    }
  },
  /** Click the first element matching `selector` (a code lens, a button). */
  async click(page, s, t) {
    const loc = page.locator(s.selector).first();
    await loc.waitFor({ timeout: t });
    await loc.click();
  },
  async key(page, s) {
    await page.keyboard.press(s.key);
  },
  /** Save the active editor (Ctrl+S) and wait until its tab is no longer dirty. */
  async save(page, s, t) {
    await page.keyboard.press('Control+S');
    await page.locator('.tab.active.dirty').waitFor({ state: 'detached', timeout: t });
  },
  async screenshot(page, s) {
    await page.screenshot({ path: s.path });
    return s.path;
  },
};

async function run(script) {
  const timeout = script.timeoutMs ?? 20000;
  const out = { ok: true, results: [] };
  const browser = await chromium.launch({
    executablePath: script.chromium ?? process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const steps = script.url ? [{ do: 'open', url: script.url }, ...script.steps] : script.steps;
    for (const step of steps) {
      const fn = STEPS[step.do];
      const started = Date.now();
      const result = { do: step.do, ok: true };
      out.results.push(result);
      try {
        if (!fn) {
          throw new Error(`unknown step "${step.do}"; known: ${Object.keys(STEPS).join(', ')}`);
        }
        const value = await fn(page, step, step.timeoutMs ?? timeout);
        if (value !== undefined) {
          result.value = value;
        }
      } catch (err) {
        result.ok = out.ok = false;
        result.error = String(err?.message ?? err).split('\n')[0];
        if (script.failureScreenshot) {
          await page.screenshot({ path: script.failureScreenshot }).catch(() => {});
          out.failureScreenshot = script.failureScreenshot;
        }
        break;
      } finally {
        result.ms = Date.now() - started;
      }
    }
  } finally {
    await browser.close();
  }
  return out;
}

const arg = process.argv[2];
if (!arg) {
  console.error('usage: node drive.mjs SCRIPT.json|-');
  process.exit(2);
}
const script = JSON.parse(readFileSync(arg === '-' ? 0 : arg, 'utf8'));
run(script).then(
  (out) => {
    process.stdout.write(JSON.stringify(out) + '\n');
    process.exit(out.ok ? 0 : 1);
  },
  (err) => {
    process.stdout.write(JSON.stringify({ ok: false, results: [], error: String(err?.message ?? err) }) + '\n');
    process.exit(1);
  },
);
