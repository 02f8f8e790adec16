// Starting a run from a weights file picked in the editor: a file that does not fit the graph is
// refused with the tensors that are wrong, before any run starts.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { openApp, shot, until } from './harness.mjs';

let app, page;
before(async () => {
  ({ page } = app = await openApp());
  await page.getByTestId('tab-train').click();
});
after(() => app?.close());

/** A .safetensors file: an 8-byte header length, the JSON header, then the raw float32 data. */
function safetensors(tensors) {
  const header = {};
  let offset = 0;
  for (const [name, shape] of Object.entries(tensors)) {
    const bytes = 4 * shape.reduce((a, b) => a * b, 1);
    header[name] = { dtype: 'F32', shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const json = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([length, json, Buffer.alloc(offset)]);
}

test('weights that do not fit the graph are refused, naming the tensors', async () => {
  const file = safetensors({ 'conv1.weight': [16, 1, 3, 3], 'conv1.bias': [8], 'other.weight': [3] });
  await page.getByLabel('Start from weights (.safetensors or .pt)').setInputFiles({
    name: 'wide.safetensors', mimeType: 'application/octet-stream', buffer: file,
  });
  await until(async () => (await page.getByTestId('weights-chosen').count()) > 0, 10_000, 'the upload');
  assert.match(await page.getByTestId('weights-chosen').textContent(), /wide\.safetensors: 3 tensors/);
  await page.getByTestId('train-start').click();
  const error = page.locator('.training .node-error, [data-testid="train-error"], .node-error').filter({ hasText: 'weights do not match' });
  await until(async () => (await error.count()) > 0, 30_000, 'the mismatch error');
  const text = await error.first().textContent();
  assert.match(text, /missing: bn1\.bias/);
  assert.match(text, /unexpected: other\.weight/);
  assert.match(text, /wrong shape: conv1\.weight \(16, 1, 3, 3\) instead of \(8, 1, 3, 3\)/);
  await shot(page, '40_weights_mismatch');
});
