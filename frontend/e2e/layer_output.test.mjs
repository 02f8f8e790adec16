// Inside a layer after a run, against the real backend: a conv net built from an empty canvas is
// trained on digits; its conv node shows the feature maps of a validation sample as a tile grid
// and a weight histogram, its Linear a histogram of its output. The drawn pixels and bars are the
// worker's own numbers (read back from the run's metrics), and they survive a reload.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { buildChain, openApp, shot, typeInto, until } from './harness.mjs';

let app, backend, page, consoleErrors;
before(async () => ({ backend, page, consoleErrors } = app = await openApp({ open: 'empty' })));
after(() => app?.close());

const CHAIN = ['Input', 'Conv2d', 'ReLU', 'Flatten', 'Linear', 'Output'];
const IDS = ['input_1', 'conv2d_1', 'relu_1', 'flatten_1', 'linear_1', 'output_1'];
const status = () => page.getByTestId('run-status').getAttribute('data-status');
const node = (id) => page.locator(`.react-flow__node[data-id="${id}"]`);


/** The canvas' pixels as the page drew them, and the tile bytes the backend sent. */
async function drawnAndSent(snapshotLayer) {
  const drawn = await page.getByTestId('feature-maps').evaluate((c) => {
    const { data } = c.getContext('2d').getImageData(0, 0, c.width, c.height);
    return { width: c.width, height: c.height, grey: Array.from({ length: data.length / 4 }, (_, i) => data[i * 4]), alpha: Array.from({ length: data.length / 4 }, (_, i) => data[i * 4 + 3]) };
  });
  const sent = Buffer.from(snapshotLayer.maps.pixels, 'base64');
  return { drawn, sent };
}

let runId;

test('a conv net from an empty canvas trains; its layers show what they made of a validation sample', async () => {
  await buildChain(page, CHAIN, IDS);
  // 20 filters, typed: more than the 16 a snapshot shows.
  await node('conv2d_1').click();
  await typeInto(page, page.getByTestId('field-out_channels').getByRole('textbox'), '20');
  await page.keyboard.press('Tab');
  await until(async () => (await page.getByTestId('status-valid').textContent()).includes('valid'), 10_000, 'a valid graph');

  await page.getByTestId('tab-train').click();
  await typeInto(page, page.getByTestId('run-form').getByLabel('Epochs', { exact: true }), '2');
  await page.getByTestId('train-start').click();
  await until(async () => (await status()) === 'finished', 90_000, 'the run to finish');
  runId = await page.evaluate(() => localStorage.getItem('layerlab_active_run'));
  const metrics = await (await fetch(`${backend.url}/api/runs/${runId}/metrics`)).json();
  const snap = metrics.snapshot;
  assert.equal(snap.epoch, 2);
  const layer = Object.fromEntries(snap.layers.map((l) => [l.node, l]));

  // The conv node: 16 of its 20 maps as tiles, and its weights.
  await page.getByTestId('tab-inspector').click();
  await node('conv2d_1').click();
  const view = page.getByTestId('layer-output');
  await view.waitFor();
  assert.match(await view.locator('h3').textContent(), /^Output on validation sample 0 · epoch 2, step \d+$/);
  const grid = page.getByRole('img', { name: /^Feature maps of conv2d_1: 16 of 20 channels, 6×6$/ });
  assert.equal(await grid.count(), 1, 'the grid has a label naming what it shows');
  assert.equal(await page.getByTestId('feature-maps').getAttribute('data-tiles'), '16');
  assert.match(await page.getByTestId('feature-maps-caption').textContent(), /^16 of 20 channels · 6×6 · each scaled/);
  const { drawn, sent } = await drawnAndSent(layer.conv2d_1);
  assert.deepEqual([drawn.width, drawn.height], [4 * 7 - 1, 4 * 7 - 1], 'four rows of four 6×6 tiles, 1 px apart');
  assert.equal(sent.length, 16 * 36);
  for (let c = 0; c < 16; c++) {
    for (let y = 0; y < 6; y++) {
      for (let x = 0; x < 6; x++) {
        const at = (Math.floor(c / 4) * 7 + y) * drawn.width + (c % 4) * 7 + x;
        assert.equal(drawn.grey[at], sent[c * 36 + y * 6 + x], `channel ${c} pixel (${y}, ${x})`);
        assert.equal(drawn.alpha[at], 255);
      }
    }
  }
  assert.ok(new Set(drawn.grey).size > 50, 'a real picture, not a flat tile');
  // Hovering a tile names its channel and the values drawn black and white.
  const tiles = page.getByTestId('feature-maps');
  await tiles.scrollIntoViewIfNeeded();
  const box = await tiles.boundingBox();
  await page.mouse.move(box.x + box.width * (1.5 / 4), box.y + box.height * (0.5 / 4), { steps: 3 });
  await until(async () => /^channel 1: black -?[\d.e+-]+, white -?[\d.e+-]+$/.test(await page.getByTestId('feature-maps-caption').textContent()), 5000, 'the hovered channel');
  const weights = page.getByTestId('weight-histogram');
  assert.equal(await weights.getAttribute('data-counts'), layer.conv2d_1.weights.counts.join(','));
  assert.equal(layer.conv2d_1.weights.counts.reduce((a, b) => a + b, 0), 20 * 1 * 3 * 3);
  assert.equal(await weights.locator('rect').count(), 32);
  assert.equal(await page.getByRole('img', { name: /^Weights of conv2d_1: 180 values in 32 bins from / }).count(), 1);
  assert.equal(await page.getByTestId('output-histogram').getAttribute('data-counts'), layer.conv2d_1.output.counts.join(','));
  await page.setViewportSize({ width: 1280, height: 720 });
  await shot(page, 'layer_output_conv_1280');
  await page.setViewportSize({ width: 1440, height: 900 });
  await shot(page, 'layer_output_conv_1440');

  // The Linear: a histogram of its 10 outputs, and of its weights; no grid.
  await node('linear_1').click();
  await until(async () => (await page.getByRole('img', { name: /^Output values of linear_1: 10 values in 32 bins/ }).count()) === 1, 5000, "the Linear's output histogram");
  assert.equal(await page.getByTestId('feature-maps').count(), 0);
  assert.equal(await page.getByTestId('output-histogram').getAttribute('data-counts'), layer.linear_1.output.counts.join(','));
  assert.equal(await page.getByTestId('weight-histogram').getAttribute('data-counts'), layer.linear_1.weights.counts.join(','));
  assert.equal(layer.linear_1.weights.counts.reduce((a, b) => a + b, 0), 10 * 20 * 6 * 6);
  assert.match(await page.getByTestId('layer-output').textContent(), /per sample 10/);
  await shot(page, 'layer_output_linear_1440');
  // Dark mode: the tiles, bars and labels stay readable.
  await node('conv2d_1').click();
  await page.emulateMedia({ colorScheme: 'dark' });
  await until(async () => (await page.evaluate(() => document.documentElement.dataset.theme)) === 'dark', 3000, 'dark mode');
  await shot(page, 'layer_output_conv_dark_1440');
  await page.emulateMedia({ colorScheme: 'light' });
  await node('linear_1').click();
  await page.setViewportSize({ width: 1280, height: 720 });
  await shot(page, 'layer_output_linear_1280');
  await page.setViewportSize({ width: 1440, height: 900 });
  // Flatten has no weights: its output only.
  await node('flatten_1').click();
  await until(async () => (await page.getByTestId('layer-output').textContent()).includes('per sample 720'), 5000, 'the Flatten');
  assert.equal(await page.getByTestId('weight-histogram').count(), 0);
});

test('a finished run still shows them after a reload', async () => {
  await page.reload();
  await node('conv2d_1').waitFor();
  await page.getByTestId('tab-train').click();
  await until(async () => (await status()) === 'finished', 20_000, 'the finished run watched again');
  await page.getByTestId('tab-inspector').click();
  await node('conv2d_1').click();
  await page.getByTestId('feature-maps').waitFor({ timeout: 10_000 });
  const metrics = await (await fetch(`${backend.url}/api/runs/${runId}/metrics`)).json();
  const { drawn, sent } = await drawnAndSent(metrics.snapshot.layers.find((l) => l.node === 'conv2d_1'));
  assert.equal(drawn.grey[0], sent[0]);
  assert.equal(drawn.grey[drawn.width * 5 + 5], sent[35], 'the last pixel of the first tile');
});

test('during a run the snapshot follows the epochs live', async () => {
  await page.getByTestId('tab-train').click();
  await typeInto(page, page.getByTestId('run-form').getByLabel('Epochs', { exact: true }), '300');
  await page.getByTestId('train-start').click();
  await until(async () => (await status()) === 'running', 30_000, 'the run to start');
  await page.getByTestId('tab-inspector').click();
  await node('conv2d_1').click();
  const epochShown = async () => Number((/· epoch (\d+),/.exec((await page.getByTestId('layer-output').locator('h3').textContent()) ?? '') ?? [])[1] ?? 0);
  // The new run's snapshots replace the finished run's, each epoch's the one before.
  await until(async () => (await epochShown()) >= 1, 30_000, "the new run's first snapshot");
  const first = await epochShown();
  await until(async () => (await epochShown()) >= first + 2, 30_000, 'later epochs while it trains');
  assert.equal(await status(), 'running');
  assert.equal(await page.getByTestId('feature-maps').getAttribute('data-tiles'), '16');
  await page.getByTestId('tab-train').click();
  await page.getByTestId('train-stop').click();
  await until(async () => (await status()) === 'stopped', 30_000, 'the run to stop');
  assert.deepEqual(consoleErrors.filter((e) => !/WebSocket/.test(e)), []);
});
