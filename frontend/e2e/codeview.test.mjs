// The training script tab against the real backend: it follows the run form as it is typed, marks
// the frozen layer's line, lights a node's lines when the pointer is over it on the canvas,
// selects the node of a clicked line, and downloads the notebook.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { buildChain, openApp, shot, typeInto, until } from './harness.mjs';

let app, page, consoleErrors;
before(async () => ({ page, consoleErrors } = app = await openApp({ open: 'empty' })));
after(() => app?.close());

const CHAIN = ['Input', 'Flatten', 'Linear', 'ReLU', 'Linear', 'Output'];
const IDS = ['input_1', 'flatten_1', 'linear_1', 'relu_1', 'linear_2', 'output_1'];
const script = () => page.getByTestId('script-code');
const line = (text) => script().locator('.code-line', { hasText: text });

test('the training script of a graph built from an empty canvas', async () => {
  await buildChain(page, CHAIN, IDS);
  await until(async () => (await page.getByTestId('status-valid').textContent()).includes('valid'), 10_000, 'a valid graph');
  await page.getByTestId('tab-code').click();
  await page.getByTestId('code-tab-script').click();
  await until(async () => (await script().textContent()).includes('optimizer.step()'), 10_000, 'the script');
  const text = await script().textContent();
  assert.match(text, /load_digits/, 'the default dataset is loaded the way the run loads it');
  assert.match(text, /model\.train\(\)/);
  assert.match(text, /torch\.inference_mode\(\)/);
  assert.ok(!text.includes('no_decay'), 'no weight decay: no decay groups');
});

test('it follows the run form, typed key by key', async () => {
  await page.getByTestId('tab-train').click();
  const wd = page.getByTestId('run-form').getByLabel('Weight decay', { exact: true });
  await typeInto(page, wd, '0.05');
  await page.getByTestId('tab-code').click();
  assert.equal(await page.getByTestId('code-tab-script').getAttribute('aria-selected'), 'true', 'the tab is remembered');
  await until(async () => (await script().textContent()).includes('"weight_decay": 0.05'), 10_000, 'the decay group');
  assert.equal(await line('no_decay.append(p)').count(), 1);
});

test('a frozen node: its requires_grad_(False) line is marked', async () => {
  await page.locator('.react-flow__node[data-id="linear_1"]').getByTestId('freeze-linear_1').click();
  await until(async () => (await line('model.linear_1.requires_grad_(False)').count()) === 1, 10_000, 'the freeze line');
  const frozen = line('model.linear_1.requires_grad_(False)');
  assert.match(await frozen.getAttribute('class'), /\bfrozen\b/);
  assert.equal(await script().locator('.code-line.frozen').count(), 1, 'only the frozen node\'s line');
  assert.match(await frozen.textContent(), /frozen$/);
});

test('hovering a node lights its lines; clicking a line selects its node', async () => {
  await page.locator('.react-flow__node[data-id="linear_2"]').hover();
  await until(async () => (await script().locator('.code-line.lit').count()) > 0, 5000, 'lit lines');
  const lit = await script().locator('.code-line.lit').allTextContents();
  assert.ok(lit.some((t) => t.includes("('linear_2', nn.Linear(10, 10))")), lit.join('\n'));
  assert.ok(lit.every((t) => t.includes('linear_2')), lit.join('\n'));
  await page.setViewportSize({ width: 1280, height: 720 });
  await shot(page, 'codeview_script_1280');
  await page.setViewportSize({ width: 1440, height: 900 });
  await page.locator('.react-flow__node[data-id="linear_2"]').hover();
  await shot(page, 'codeview_script_1440');

  await line("('flatten_1', nn.Flatten())").click();
  await until(
    async () => (await page.locator('.react-flow__node[data-id="flatten_1"]').getAttribute('class')).includes('selected'),
    3000,
    'flatten_1 selected',
  );
  assert.ok(!(await page.locator('.react-flow__node[data-id="linear_2"]').getAttribute('class')).includes('selected'));
});

test('the notebook downloads as a valid nbformat 4 file', async () => {
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-ipynb').click()]);
  assert.match(download.suggestedFilename(), /_train\.ipynb$/);
  const nb = JSON.parse(await readFile(await download.path(), 'utf8'));
  assert.equal(nb.nbformat, 4);
  const code = nb.cells.filter((c) => c.cell_type === 'code').map((c) => c.source.join('')).join('\n');
  assert.match(code, /"weight_decay": 0\.05/, 'the notebook has the form\'s settings');
  assert.match(code, /print\(model\)/);
  const [py] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-script').click()]);
  assert.match(py.suggestedFilename(), /_train\.py$/);
  assert.deepEqual(consoleErrors, []);
});
