// The catalog's sequence kinds in the editor: they come from the backend's catalog, so they must
// show in the palette under their categories and render their parameters; an LSTM text classifier
// built from an empty canvas gets the shapes the server computes; a class token switched to a raw
// parameter shows in the model code as ViT code writes it.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { badge, buildChain, clearCanvas, openApp, shot, typeInto, until } from './harness.mjs';

let app, backend, page, consoleErrors;
before(async () => ({ backend, page, consoleErrors } = app = await openApp({ open: 'empty' })));
after(() => app?.close());

/** Select the Input node and type its shape key by key, as a person does. */
async function setInputShape(text) {
  await page.locator('.react-flow__node[data-id="input_1"]').click();
  const shape = page.getByTestId('field-shape').locator('input');
  await typeInto(page, shape, text);
  await shape.press('Tab');
}

test('the new kinds are in the palette', async () => {
  const catalog = await (await fetch(`${backend.url}/api/catalog`)).json();
  const wanted = ['LSTM', 'GRU', 'RNN', 'MultiheadAttention', 'TransformerEncoderLayer', 'TransformerEncoder',
    'PositionalEmbedding', 'ClassToken', 'Select', 'Permute', 'Reshape', 'Mean', 'Multiply', 'PixelShuffle', 'ReLU6',
    'Mish'];
  for (const op of wanted) {
    assert.ok(catalog.ops.some((o) => o.op === op), `${op} is in the catalog`);
    await page.getByTestId(`palette-${op}`).waitFor({ timeout: 5000 });
  }
  const text = await page.locator('body').textContent();
  assert.match(text, /Recurrent/);
  assert.match(text, /Attention/);
});

test('an LSTM classifier from token ids, built by hand', async () => {
  const chain = ['Input', 'Embedding', 'LSTM', 'Linear', 'Output'];
  const ids = ['input_1', 'embedding_1', 'lstm_1', 'linear_1', 'output_1'];
  await buildChain(page, chain, ids);

  // The Input: 12 token ids per sample.
  await setInputShape('12');
  await page.getByTestId('field-dtype').locator('select').selectOption('int64');
  await until(async () => (await badge(page, 'embedding_1')) === '12×64', 10_000, 'the embedding badge');

  // The LSTM's own form: hidden_size typed key by key, only the last step flows on.
  await page.locator('.react-flow__node[data-id="lstm_1"]').click();
  for (const field of ['hidden_size', 'num_layers', 'bidirectional', 'dropout', 'output']) {
    await page.getByTestId(`field-${field}`).waitFor();
  }
  const hidden = page.getByTestId('field-hidden_size').locator('input');
  await hidden.click();
  await hidden.pressSequentially('32');
  await hidden.press('Tab');
  await until(async () => (await badge(page, 'lstm_1')) === '12×32', 10_000, 'the LSTM sequence badge');
  await page.getByTestId('field-output').locator('select').selectOption('last');
  await until(async () => (await badge(page, 'lstm_1')) === '32', 10_000, 'the LSTM last-step badge');
  await page.getByTestId('field-bidirectional').locator('input').check();
  await until(async () => (await badge(page, 'lstm_1')) === '64', 10_000, 'both directions joined');
  await until(async () => (await badge(page, 'output_1')) === '10', 10_000, 'the output badge');
  await until(async () => (await page.getByTestId('status-valid').textContent()).includes('valid'), 5000, 'a valid graph');

  // embedding 1000·64 + bidirectional LSTM 2·(4·32·(64+32) + 2·4·32) + linear 64·10 + 10
  const trainable = Number(await page.getByTestId('trainable-params').getAttribute('data-value'));
  assert.equal(trainable, 64000 + 2 * (4 * 32 * 96 + 256) + 650);

  await page.setViewportSize({ width: 1280, height: 720 });
  await shot(page, 'seq_lstm_1280');
  await page.setViewportSize({ width: 1440, height: 900 });
  await shot(page, 'seq_lstm_1440');
  assert.deepEqual(consoleErrors, []);
});

test('a class token held as a raw parameter, then its output taken with Select', async () => {
  await clearCanvas(page);
  const chain = ['Input', 'ClassToken', 'Select', 'Output'];
  const ids = ['input_1', 'class_token_1', 'select_1', 'output_1'];
  await buildChain(page, chain, ids);

  // The Input: a sequence of 5 steps of 8 features.
  await setInputShape('5, 8');
  await until(async () => (await badge(page, 'class_token_1')) === '6×8', 10_000, 'one more step');
  await until(async () => (await badge(page, 'select_1')) === '8', 10_000, 'the first step taken');

  await page.locator('.react-flow__node[data-id="class_token_1"]').click();
  await page.getByTestId('field-form').locator('select').selectOption('parameter');
  await page.getByTestId('tab-code').click();
  await page.getByTestId('code-tab-model').click();
  const code = page.getByTestId('code');
  await until(async () => (await code.textContent()).includes('nn.Parameter(torch.zeros(1, 1, 8))'), 10_000,
    'the raw parameter in the model code');
  const text = await code.textContent();
  assert.match(text, /self\.class_token_1 = nn\.Parameter\(torch\.zeros\(1, 1, 8\)\)/);
  assert.match(text, /torch\.cat\(\[self\.class_token_1\.expand\(input_1\.size\(0\), -1, -1\), input_1\], dim=1\)/);
  assert.match(text, /Select\(1, 0\)/);
  await until(async () => (await page.getByTestId('status-valid').textContent()).includes('valid'), 5000, 'a valid graph');

  await page.setViewportSize({ width: 1280, height: 720 });
  await shot(page, 'seq_cls_param_1280');
  await page.setViewportSize({ width: 1440, height: 900 });
  await shot(page, 'seq_cls_param_1440');
  assert.deepEqual(consoleErrors, []);
});
