// Starts a real LayerLab backend (uvicorn, temp data dir, free port) serving the built editor,
// and a Chromium driven by playwright-core. No mocks: the page talks to the real API.
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '../..');
export const screenshotDir = path.join(here, 'screenshots');
const python = process.env.LAYERLAB_PYTHON ?? path.join(repoRoot, '.venv/bin/python');
const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function waitFor(url, ms, proc, log) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (proc.exitCode !== null) throw new Error(`backend exited with ${proc.exitCode}:\n${log.join('')}`);
    try {
      const res = await fetch(url);
      if (res.ok) return;
    } catch {
      /* not up yet */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`backend did not answer ${url} within ${ms} ms:\n${log.join('')}`);
}

export async function startBackend() {
  if (!existsSync(path.join(repoRoot, 'backend/layerlab/static/index.html'))) {
    throw new Error('the editor is not built: run `npm run build` first');
  }
  const port = await freePort();
  const dataDir = mkdtempSync(path.join(tmpdir(), 'layerlab-e2e-'));
  const log = [];
  const proc = spawn(
    python,
    ['-m', 'uvicorn', '--factory', 'layerlab.api:create_app', '--host', '127.0.0.1', '--port', String(port), '--log-level', 'warning'],
    { cwd: repoRoot, env: { ...process.env, LAYERLAB_DATA_DIR: dataDir }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  proc.stdout.on('data', (d) => log.push(String(d)));
  proc.stderr.on('data', (d) => log.push(String(d)));
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`${url}/api/catalog`, 30_000, proc, log);
  return {
    url,
    dataDir,
    log,
    async stop() {
      if (proc.exitCode === null) {
        proc.kill('SIGTERM');
        await new Promise((r) => {
          const t = setTimeout(() => {
            proc.kill('SIGKILL');
            r();
          }, 5000);
          proc.once('exit', () => {
            clearTimeout(t);
            r();
          });
        });
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export async function startBrowser() {
  const browser = await chromium.launch({ executablePath: chromiumPath, args: CHROMIUM_ARGS, headless: true });
  const context = await browser.newContext({ viewport: { width: 1500, height: 900 } });
  const page = await context.newPage();
  const consoleErrors = [];
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  page.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
  return { browser, context, page, consoleErrors };
}

export async function shot(page, name) {
  mkdirSync(screenshotDir, { recursive: true });
  await page.screenshot({ path: path.join(screenshotDir, `${name}.png`) });
}

/** Drags a palette item onto the canvas at (x, y) relative to the canvas' top-left. */
export async function dropLayer(page, op, x, y) {
  const canvas = page.getByTestId('canvas');
  await page.getByTestId(`palette-${op}`).dragTo(canvas, { targetPosition: { x, y } });
}

/** Connects the bottom (source) handle of one node to the top (target) handle of another. */
export async function connectNodes(page, fromId, toId) {
  const src = page.locator(`.react-flow__node[data-id="${fromId}"] .react-flow__handle.source`);
  const dst = page.locator(`.react-flow__node[data-id="${toId}"] .react-flow__handle.target`);
  const a = await src.boundingBox();
  const b = await dst.boundingBox();
  await page.mouse.move(a.x + a.width / 2, a.y + a.height / 2);
  await page.mouse.down();
  await page.mouse.move((a.x + b.x) / 2, (a.y + b.y) / 2, { steps: 5 });
  await page.mouse.move(b.x + b.width / 2, b.y + b.height / 2, { steps: 5 });
  await page.mouse.up();
}

export async function badge(page, id) {
  return (await page.locator(`.react-flow__node[data-id="${id}"] [data-testid="shape-badge"]`).first().textContent())?.trim();
}

/** Polls fn until it returns a truthy value (or throws after ms). */
export async function until(fn, ms = 10_000, what = 'condition') {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what} (last: ${last})`);
}

/** Opens the editor (the demo project comes first) and clears the canvas, as a person starting over does. */
export async function openEmptyCanvas(page, url) {
  await page.goto(url);
  await page.getByTestId('palette-Conv2d').waitFor();
  await page.locator('.react-flow__node').first().waitFor();
  await clearCanvas(page);
}

/** Selects everything on the canvas and deletes it, as a person starting over does. */
export async function clearCanvas(page) {
  await page.getByTestId('canvas').click({ position: { x: 20, y: 20 } });
  await page.keyboard.press('Control+a');
  await page.keyboard.press('Delete');
  await until(async () => (await page.locator('.react-flow__node').count()) === 0, 5000, 'an empty canvas');
}

/** Drops `ops` from the palette in a column and connects the nodes `ids` (their ids) in order. */
export async function buildChain(page, ops, ids) {
  for (let i = 0; i < ops.length; i++) await dropLayer(page, ops[i], 330, 40 + i * 95);
  for (let i = 0; i + 1 < ids.length; i++) await connectNodes(page, ids[i], ids[i + 1]);
}

/** Clears a field and types into it one key at a time, as a person does. */
export async function typeInto(page, locator, text) {
  await locator.click();
  await page.keyboard.press('Control+a');
  await page.keyboard.press('Backspace');
  await locator.pressSequentially(text, { delay: 20 });
}

/**
 * The backend and a browser page for a test file, as its `before` hook opens them. `open` is 'demo'
 * (the demo project on the canvas) or 'empty' (the canvas cleared, as a person starting over does);
 * `viewport` sizes the page first. Returns { backend, browser, context, page, consoleErrors, close };
 * `close()` (for the `after` hook) ends the browser and the backend. What started is ended if
 * opening fails.
 */
export async function openApp({ open = 'demo', viewport } = {}) {
  const backend = await startBackend();
  let browser;
  const close = async () => {
    await browser?.close();
    await backend.stop();
  };
  try {
    const opened = await startBrowser();
    browser = opened.browser;
    const { page } = opened;
    if (viewport) await page.setViewportSize(viewport);
    if (open === 'empty') {
      await openEmptyCanvas(page, backend.url);
    } else {
      await page.goto(backend.url);
      await page.getByTestId('palette-Conv2d').waitFor();
      await page.locator('.react-flow__node[data-id="fc"]').waitFor();
    }
    return { ...opened, backend, close };
  } catch (e) {
    await close();
    throw e;
  }
}
