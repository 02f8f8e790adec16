// Training against the real backend: start a run on digits, watch the loss chart fill from the
// websocket, stop it; reload the page mid-run and see the curve continue without a gap.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { openApp, shot, until } from './harness.mjs';

let app, backend, page, consoleErrors;
before(async () => {
  ({ backend, page, consoleErrors } = app = await openApp());
  // The demo project (a digits CNN) opens on first start.
  await until(async () => (await page.getByTestId('status-valid').textContent()).includes('valid'), 10_000, 'a valid graph');
  await page.getByTestId('tab-train').click();
});
after(() => app?.close());

const chart = () => page.locator('[data-testid="chart-step-loss"]');
const points = async () => Number((await chart().getAttribute('data-points')) ?? 0);
const lastX = async () => Number((await chart().getAttribute('data-last-x')) || 0);
const status = () => page.getByTestId('run-status').getAttribute('data-status');
/** points, first and last x read together: the chart keeps updating between separate reads. */
const curve = () =>
  chart().evaluate((el) => ({
    points: Number(el.getAttribute('data-points') ?? 0),
    first: Number(el.getAttribute('data-first-x') || 0),
    last: Number(el.getAttribute('data-last-x') || 0),
  }));

async function startRun(epochs) {
  await page.getByTestId('run-form-epochs').fill(String(epochs));
  await page.getByTestId('train-start').click();
  await until(async () => ['running', 'queued'].includes(await status()), 30_000, 'the run to start');
}

test('a dataset whose samples do not fit the Input is explained in the words the run start uses', async () => {
  assert.match(await page.getByTestId('train-note').textContent(), /saves the graph as a new project version first/);
  await page.getByTestId('dataset').selectOption('iris');
  const text = await page.getByTestId('dataset-mismatch').textContent();
  assert.match(text, /^input: the graph takes inputs of shape \(1, 8, 8\) but dataset 'iris' gives samples of shape \(4\)/);
  assert.match(text, /set input's shape to \[4\]/);
  await shot(page, '09_dataset_mismatch');
  await page.getByTestId('dataset').selectOption('digits');
  await page.getByTestId('dataset-mismatch').waitFor({ state: 'detached', timeout: 10_000 });
  assert.equal(await page.getByTestId('run-check-problem').count(), 0);
});

test('train on digits: the loss chart receives points; stop ends the run', async () => {
  await startRun(300);
  await until(async () => (await points()) >= 20, 60_000, 'loss points on the chart');
  assert.equal(await status(), 'running');
  // Per-layer statistics reach the canvas (tint and dead-ReLU share).
  await until(async () => (await page.locator('.react-flow__node[data-id="relu1"] .live-badges .dead').count()) > 0, 30_000, 'dead-ReLU badge');
  await shot(page, '10_training_live');

  await page.getByTestId('train-pause').click();
  await until(async () => (await status()) === 'paused', 30_000, 'the run to pause');
  const pausedAt = await lastX();
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(await lastX(), pausedAt, 'no steps while paused');
  await page.getByTestId('train-resume').click();
  await until(async () => (await lastX()) > pausedAt, 30_000, 'steps after resuming');

  await page.getByTestId('train-stop').click();
  await until(async () => (await status()) === 'stopped', 30_000, 'the run to stop');
  const n = await points();
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(await points(), n, 'no points after the stop');
  await shot(page, '11_training_stopped');

  // Continue: the same run goes on from its checkpoint; the curve continues without a gap.
  const stoppedAt = await lastX();
  await page.getByTestId('train-continue').click();
  await until(async () => (await lastX()) > stoppedAt + 5, 60_000, 'steps after continuing');
  assert.equal(await status(), 'running');
  const c = await curve();
  assert.equal(c.points, c.last - c.first + 1, 'every step once, across the stop');
  await page.getByTestId('train-stop').click();
  await until(async () => (await status()) === 'stopped', 30_000, 'the continued run to stop');
});

test('reloading mid-run continues the curve with no gap', async () => {
  await startRun(300);
  await until(async () => (await points()) >= 30, 60_000, 'points before the reload');
  const beforeReload = await lastX();
  const runId = await page.evaluate(() => localStorage.getItem('layerlab_active_run'));
  assert.ok(runId);

  await page.reload();
  await page.locator('.react-flow__node[data-id="fc"]').waitFor();
  await page.getByTestId('tab-train').click();
  // History from the metrics endpoint, then the live stream after its last seq.
  await until(async () => (await lastX()) >= beforeReload, 30_000, 'the history after the reload');
  await until(async () => (await lastX()) > beforeReload + 20, 60_000, 'new live points after the reload');
  assert.equal(await status(), 'running');

  const { points: n, first, last } = await curve();
  assert.equal(n, last - first + 1, `every step from ${first} to ${last} is on the chart, once`);
  const metrics = await (await fetch(`${backend.url}/api/runs/${runId}/metrics`)).json();
  assert.equal(metrics.steps[0][0], first, 'the chart starts where the stored history starts');
  await shot(page, '12_training_after_reload');

  await page.getByTestId('train-stop').click();
  await until(async () => (await status()) === 'stopped', 30_000, 'the run to stop');
});

test('run history: overlay an earlier run, fine-tune from a checkpoint', async () => {
  const rows = page.locator('.run-history tbody tr');
  await until(async () => (await rows.count()) >= 2, 10_000, 'two runs in the history');
  const legend = () => page.locator('[data-testid="chart-step-loss"] .u-legend .u-series').count();
  const before = await legend();
  await rows.nth(1).locator('input[type="checkbox"]').click();
  await until(async () => (await legend()) === before + 2, 10_000, 'the overlaid run in the legend');
  await shot(page, '13_overlay');
  await rows.nth(1).locator('input[type="checkbox"]').click();

  const finetune = page.locator('.run-history button', { hasText: 'fine-tune' }).first();
  await until(async () => (await finetune.count()) > 0, 15_000, 'a run with a checkpoint');
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('checkpoint-download').first().click()]);
  assert.match(download.suggestedFilename(), /\.safetensors$/);
  const previous = await page.evaluate(() => localStorage.getItem('layerlab_active_run'));
  await finetune.click();
  await until(async () => (await page.evaluate(() => localStorage.getItem('layerlab_active_run'))) !== previous, 15_000, 'a new run');
  await until(async () => ['running', 'queued'].includes(await status()), 30_000, 'the fine-tune run to start');
  await until(async () => (await points()) > 0, 60_000, 'fine-tune loss points');
  await page.getByTestId('train-stop').click();
  await until(async () => (await status()) === 'stopped', 30_000, 'the fine-tune run to stop');
  assert.deepEqual(consoleErrors.filter((e) => !/WebSocket/.test(e)), []);
});
