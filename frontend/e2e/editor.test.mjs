// The editor against the real backend: build a CNN from the palette, read the shapes the server
// computes, break it and fix it with the server's suggestion, freeze a block.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { badge, connectNodes, dropLayer, openApp, shot, typeInto, until } from './harness.mjs';

let app, page, consoleErrors;
before(async () => ({ page, consoleErrors } = app = await openApp({ open: 'empty' })));
after(() => app?.close());

const CHAIN = ['Input', 'Conv2d', 'ReLU', 'MaxPool2d', 'Flatten', 'Linear', 'Output'];
const IDS = ['input_1', 'conv2d_1', 'relu_1', 'max_pool2d_1', 'flatten_1', 'linear_1', 'output_1'];

async function trainable() {
  return Number(await page.getByTestId('trainable-params').getAttribute('data-value'));
}

test('build a small CNN by dragging from the palette and connecting', async () => {
  for (let i = 0; i < CHAIN.length; i++) await dropLayer(page, CHAIN[i], 330, 40 + i * 95);
  assert.deepEqual(
    await page.locator('.react-flow__node').evaluateAll((els) => els.map((e) => e.getAttribute('data-id'))),
    IDS,
  );
  for (let i = 0; i + 1 < IDS.length; i++) await connectNodes(page, IDS[i], IDS[i + 1]);
  assert.equal(await page.locator('.react-flow__edge').count(), IDS.length - 1);

  // Shapes as the backend reports them (Conv2d defaults: 16 filters, 3×3, no padding).
  await until(async () => (await badge(page, 'output_1')) === '10', 10_000, 'the output badge');
  assert.equal(await badge(page, 'input_1'), '1×8×8');
  assert.equal(await badge(page, 'conv2d_1'), '16×6×6');
  assert.equal(await badge(page, 'max_pool2d_1'), '16×3×3');
  assert.equal(await badge(page, 'flatten_1'), '144');
  assert.equal(await badge(page, 'linear_1'), '10');
  const title = await page.locator('.react-flow__node[data-id="conv2d_1"] [data-testid="shape-badge"]').getAttribute('title');
  assert.match(title, /H: \(8 .*= 6/, 'the formula shows on hover');

  // Edit a param in the inspector: padding 1 keeps 8×8.
  await page.locator('.react-flow__node[data-id="conv2d_1"]').click();
  const padding = page.getByTestId('field-padding').locator('input');
  await padding.fill('1');
  await until(async () => (await badge(page, 'conv2d_1')) === '16×8×8', 5000, 'conv badge after padding=1');
  assert.equal(await badge(page, 'flatten_1'), '256');
  await until(async () => (await page.getByTestId('status-valid').textContent()).includes('valid'), 5000, 'a valid graph');
  assert.equal(await trainable(), 160 + 2570);
  await shot(page, '01_cnn_built');
});

test('removing Flatten puts the error on Linear; the suggested fix restores it', async () => {
  await page.locator('.react-flow__node[data-id="flatten_1"]').click();
  await page.keyboard.press('Delete'); // in a chain: max_pool2d_1 → linear_1 is joined
  await until(async () => (await page.locator('.react-flow__edge[data-id="e_max_pool2d_1__linear_1"]').count()) === 1, 3000, 'the neighbours joined');
  const linear = page.locator('.react-flow__node[data-id="linear_1"]');
  await until(async () => (await linear.locator('.layer-node').getAttribute('class')).includes('has-error'), 5000, 'error on linear_1');
  const message = await until(async () => {
    const text = await linear.getByTestId('node-error').first().textContent();
    return text.includes('Flatten') && text;
  }, 5000, 'the Flatten suggestion');
  assert.match(message, /linear_1/);
  assert.match(message, /insert Flatten before linear_1/);
  // Only that node is marked.
  assert.equal(await page.locator('.layer-node.has-error').count(), 1);
  await shot(page, '02_flatten_error');

  await linear.getByTestId('fix-button').click();
  await until(async () => (await badge(page, 'linear_1')) === '10', 5000, 'linear badge after the fix');
  assert.equal(await badge(page, 'flatten_1'), '256');
  assert.equal(await page.locator('.layer-node.has-error').count(), 0);
  await shot(page, '03_flatten_fixed');
});

test('undo and redo walk the edit history', async () => {
  await page.getByTestId('canvas').click({ position: { x: 20, y: 20 } });
  await page.keyboard.press('Control+z'); // the fix
  await until(async () => (await page.locator('.react-flow__node[data-id="flatten_1"]').count()) === 0, 3000, 'fix undone');
  await page.keyboard.press('Control+Shift+z');
  await until(async () => (await page.locator('.react-flow__node[data-id="flatten_1"]').count()) === 1, 3000, 'fix redone');
  await until(async () => (await badge(page, 'linear_1')) === '10', 5000, 'valid again');
});

test('grouping into a block and freezing it drops the trainable count', async () => {
  const before = await trainable();
  await page.locator('.react-flow__node[data-id="conv2d_1"]').click();
  await page.locator('.react-flow__node[data-id="relu_1"]').click({ modifiers: ['Shift'] });
  await page.keyboard.press('Control+g');
  const block = page.locator('.react-flow__node[data-id="block_1"]');
  await block.waitFor();
  assert.equal(await page.locator('.react-flow__node[data-id="conv2d_1"]').evaluate((e) => e.closest('.react-flow__nodes') !== null), true);
  await until(async () => (await badge(page, 'block_1')) === '16×8×8', 5000, 'block badge');
  assert.equal(await trainable(), before, 'grouping changes no parameter');

  await block.getByTestId('freeze-block_1').first().click();
  await until(async () => (await trainable()) === before - 160, 5000, 'trainable count after freezing');
  assert.equal(Number(await page.getByTestId('frozen-params').getAttribute('data-value')), 160);
  // The children show frozen too.
  assert.match(await page.locator('.react-flow__node[data-id="conv2d_1"] .layer-node').getAttribute('class'), /frozen/);
  await shot(page, '04_block_frozen');

  // Collapse hides the children; expand brings them back.
  await block.locator('.collapse-toggle').click();
  await until(async () => !(await page.locator('.react-flow__node[data-id="conv2d_1"]').isVisible()), 3000, 'collapsed');
  await shot(page, '05_block_collapsed');
  await block.locator('.collapse-toggle').click();
  await until(async () => page.locator('.react-flow__node[data-id="conv2d_1"]').isVisible(), 3000, 'expanded');
});

test('dropping a layer onto a block puts it inside the block', async () => {
  const box = await page.locator('.react-flow__node[data-id="block_1"]').boundingBox();
  const canvasBox = await page.getByTestId('canvas').boundingBox();
  // Onto the block's lower edge, below relu_1.
  await page.getByTestId('palette-Dropout').dragTo(page.getByTestId('canvas'), {
    targetPosition: { x: box.x - canvasBox.x + box.width / 2, y: box.y - canvasBox.y + box.height - 12 },
  });
  await page.locator('.react-flow__node[data-id="dropout_1"]').waitFor();
  await connectNodes(page, 'relu_1', 'dropout_1');
  await until(async () => (await badge(page, 'dropout_1')) === '16×8×8', 5000, 'dropout badge');
  await until(async () => (await page.getByTestId('status-valid').textContent()).includes('✓ valid'), 5000, 'valid with the dropout');
  await shot(page, '06b_dropped_into_block');

  // Residual from the block's header: the backend adds a projection shortcut (1→16 channels).
  const frozenBefore = Number(await page.getByTestId('frozen-params').getAttribute('data-value'));
  await page.getByTestId('residual-block_1').check();
  const blockBadge = page.locator('.react-flow__node[data-id="block_1"] .block-meta [data-testid="shape-badge"]');
  await until(async () => /residual/.test((await blockBadge.getAttribute('title')) ?? ''), 5000, 'the residual formula');
  assert.ok(Number(await page.getByTestId('frozen-params').getAttribute('data-value')) > frozenBefore, 'the projection adds (frozen) parameters');
  await page.getByTestId('residual-block_1').uncheck();
  await until(async () => Number(await page.getByTestId('frozen-params').getAttribute('data-value')) === frozenBefore, 5000, 'residual off');
});

test('copy and paste a layer; the shortcut help opens with ?', async () => {
  await page.locator('.react-flow__node[data-id="linear_1"]').click();
  await page.keyboard.press('Control+c');
  await page.keyboard.press('Control+v');
  await page.locator('.react-flow__node[data-id="linear_2"]').waitFor();
  // The pasted copy is selected; Delete removes it again.
  await page.keyboard.press('Delete');
  await until(async () => (await page.locator('.react-flow__node[data-id="linear_2"]').count()) === 0, 3000, 'the copy removed');
  await page.keyboard.press('?');
  await page.getByTestId('help-overlay').waitFor();
  await shot(page, '07_shortcut_help');
  await page.keyboard.press('Escape');
  await until(async () => (await page.getByTestId('help-overlay').count()) === 0, 3000, 'help closed');
});

test('save a version in the projects panel', async () => {
  await page.getByTestId('tab-projects').click();
  await page.getByRole('button', { name: 'Save', exact: true }).last().click();
  await until(async () => (await page.getByTestId('projects').textContent()).includes('version 2'), 5000, 'version 2 saved');
  await shot(page, '08_projects');
});

test('code view shows the generated PyTorch code', async () => {
  await page.getByTestId('tab-code').click();
  await until(async () => (await page.getByTestId('code').textContent()).includes('nn.Conv2d'), 10_000, 'python code');
  const code = await page.getByTestId('code').textContent();
  // The dropped Dropout is compiled inside the block's Sequential, after relu_1.
  const inBlock = code.slice(code.indexOf("('block_1'"), code.indexOf("('max_pool2d_1'"));
  assert.match(inBlock, /\('relu_1', nn\.ReLU\(\)\)[^]*\('dropout_1', nn\.Dropout\(/);
  assert.match(code, /\('conv2d_1', nn\.Conv2d\(1, 16, kernel_size=3, padding=1\)\)/);
  assert.ok((await page.locator('.code .tok-kw').count()) > 3, 'keywords are highlighted');
  await shot(page, '09_code_view');
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-python').click()]);
  assert.match(download.suggestedFilename(), /\.py$/);
  assert.deepEqual(consoleErrors, []);
});

test('an empty project is made from the name typed for it; the field is then ready for the next', async () => {
  await page.getByTestId('tab-projects').click();
  const name = page.getByLabel("Empty project's name", { exact: true });
  await typeInto(page, name, 'my_mlp');
  await page.getByRole('button', { name: 'Empty project' }).click();
  await until(async () => (await page.locator('.top-bar .project').textContent()).includes('my_mlp'), 5000, 'the new project open');
  assert.equal(await page.locator('.react-flow__node').count(), 2, 'an Input and an Output');
  // cleared once the project is made and the list refreshed (the title shows it a moment before)
  await until(async () => (await name.inputValue()) === '', 5000, 'the name field cleared');
  assert.deepEqual(consoleErrors, []);
});
