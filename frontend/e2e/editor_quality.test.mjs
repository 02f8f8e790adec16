// The editor as a new user meets it, against the real backend: building is quiet until there is
// a real error, deleting in a chain reconnects, templates open readable, drafts survive a reload,
// existing layers drag into blocks, and dark mode.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { badge, connectNodes, dropLayer, openApp, shot, until } from './harness.mjs';

let app, page, consoleErrors;
before(async () => ({ page, consoleErrors } = app = await openApp({ viewport: { width: 1280, height: 720 } })));
after(() => app?.close());

const node = (id) => page.locator(`.react-flow__node[data-id="${id}"]`);
const redErrors = () => page.locator('.has-error').count();
const idle = () => until(async () => (await page.getByTestId('report-pending').count()) === 0, 10_000, 'the report');

test('delete Flatten in the demo: the neighbours join and the Linear explains itself with a fix', async () => {
  await until(async () => (await badge(page, 'fc')) === '10', 10_000, 'the demo analysed');
  await node('flatten').click();
  await page.keyboard.press('Delete');
  await until(async () => (await node('flatten').count()) === 0, 3000, 'flatten deleted');
  // pool1 → fc now, so the error is the real one, on fc only.
  await until(async () => (await node('fc').locator('.layer-node').getAttribute('class')).includes('has-error'), 5000, 'the error on fc');
  const message = await node('fc').getByTestId('node-error').first().textContent();
  assert.match(message, /Linear works on a vector of features per sample, received \(8, 4, 4\)/);
  assert.equal(await redErrors(), 1, 'only the Linear is red');
  assert.equal(await page.getByTestId('unconnected-hint').count(), 0, 'nothing is left unconnected');
  await shot(page, 'q01_demo_flatten_deleted');
  const fix = node('fc').getByTestId('fix-button');
  assert.match(await fix.textContent(), /insert Flatten before fc/);
  await fix.click();
  await until(async () => (await badge(page, 'fc')) === '10', 5000, 'fc fixed');
  assert.equal(await redErrors(), 0);

  // One undo takes the fix back, one more brings the Flatten back with its two edges.
  await page.getByTestId('canvas').click({ position: { x: 30, y: 30 } });
  await page.keyboard.press('Control+z');
  await until(async () => (await redErrors()) === 1, 5000, 'the fix undone');
  await page.keyboard.press('Control+z');
  await until(async () => (await node('flatten').count()) === 1, 3000, 'the Flatten back');
  await until(async () => (await redErrors()) === 0 && (await badge(page, 'fc')) === '10', 5000, 'valid again');

  // Ctrl+Delete leaves the gap: fc then has nothing feeding it, a hint rather than an error.
  await node('flatten').click();
  await page.keyboard.press('Control+Delete');
  await until(async () => (await page.getByTestId('unconnected-hint').count()) >= 1, 5000, 'the unconnected hint');
  await idle();
  assert.equal(await redErrors(), 0, 'a gap while building is not red');
  await page.keyboard.press('Control+z');
  await until(async () => (await node('flatten').count()) === 1, 3000, 'undo the gap');
});

test('dropping 7 layers on an empty canvas shows no red until a real error exists', async () => {
  await page.getByTestId('canvas').click({ position: { x: 30, y: 30 } });
  await page.keyboard.press('Control+a');
  await page.keyboard.press('Delete');
  await until(async () => (await page.locator('.react-flow__node').count()) === 0, 5000, 'an empty canvas');
  assert.ok(await page.getByTestId('empty-canvas').isVisible(), 'the empty canvas says how to start');
  await shot(page, 'q02_empty_canvas');
  const chain = ['Input', 'Conv2d', 'ReLU', 'MaxPool2d', 'Flatten', 'Linear', 'Output'];
  const ids = ['input_1', 'conv2d_1', 'relu_1', 'max_pool2d_1', 'flatten_1', 'linear_1', 'output_1'];
  for (let i = 0; i < chain.length; i++) {
    await dropLayer(page, chain[i], 200 + (i % 2) * 240, 30 + i * 80);
    await idle();
    assert.equal(await redErrors(), 0, `no red after dropping ${chain[i]}`);
  }
  assert.ok((await page.getByTestId('unconnected-hint').count()) >= 5, 'unconnected layers carry a hint');
  assert.match(await page.getByTestId('status-valid').textContent(), /not connected yet/);
  assert.doesNotMatch(await page.getByTestId('status-valid').textContent(), /error/);
  await shot(page, 'q03_seven_dropped');

  for (let i = 0; i + 1 < ids.length; i++) await connectNodes(page, ids[i], ids[i + 1]);
  await until(async () => (await badge(page, 'output_1')) === '10', 10_000, 'the chain analysed');
  assert.equal(await redErrors(), 0);
  assert.equal(await page.getByTestId('unconnected-hint').count(), 0);

  // A real error: a kernel larger than the input.
  await node('conv2d_1').click();
  const kernel = page.getByTestId('field-kernel_size').locator('input');
  await kernel.click();
  await kernel.press('Control+a');
  await kernel.pressSequentially('9');
  await until(async () => (await redErrors()) === 1, 5000, 'one red error');
  assert.match(await page.getByTestId('status-valid').textContent(), /1 error/);
  // The callout stays on the canvas (on the node's left near the right edge), not under the side panel.
  const callout = await node('conv2d_1').getByTestId('error-callout').boundingBox();
  const canvasBox = await page.getByTestId('canvas').boundingBox();
  assert.ok(callout.x >= canvasBox.x && callout.x + callout.width <= canvasBox.x + canvasBox.width, `callout ${JSON.stringify(callout)} inside ${JSON.stringify(canvasBox)}`);

  // The problems list selects and centres the node.
  await page.getByTestId('canvas').click({ position: { x: 30, y: 30 } });
  await page.mouse.wheel(0, 0);
  await page.getByTestId('status-valid').click();
  await page.getByTestId('problems-panel').waitFor();
  await shot(page, 'q04_problems_panel');
  await page.getByTestId('problems-panel').getByTestId('problem-conv2d_1').click();
  await until(async () => (await node('conv2d_1').getAttribute('class')).includes('selected'), 3000, 'conv2d_1 selected');
  const box = await node('conv2d_1').boundingBox();
  const canvas = await page.getByTestId('canvas').boundingBox();
  await until(async () => {
    const b = await node('conv2d_1').boundingBox();
    return Math.abs(b.x + b.width / 2 - (canvas.x + canvas.width / 2)) < 30 && Math.abs(b.y + b.height / 2 - (canvas.y + canvas.height / 2)) < 40;
  }, 3000, `conv2d_1 centred (was ${JSON.stringify(box)})`);
  await kernel.click();
  await kernel.press('Control+a');
  await kernel.pressSequentially('3');
  await until(async () => (await redErrors()) === 0, 5000, 'fixed');
  assert.deepEqual(consoleErrors, []);
});

/** The canvas zoom, read from React Flow's viewport transform. */
async function zoom() {
  const t = await page.locator('.react-flow__viewport').evaluate((el) => el.style.transform);
  return Number(/scale\(([\d.]+)\)/.exec(t)[1]);
}

/** Edges whose drawn path leaves the box spanned by the two nodes it joins (a loop around a node). */
async function loopEdges() {
  return page.evaluate(() => {
    const bad = [];
    for (const g of document.querySelectorAll('.react-flow__edge')) {
      const id = g.getAttribute('data-id');
      const [src, dst] = g.getAttribute('aria-label').replace('Edge from ', '').split(' to ');
      const a = document.querySelector(`.react-flow__node[data-id="${src}"]`)?.getBoundingClientRect();
      const b = document.querySelector(`.react-flow__node[data-id="${dst}"]`)?.getBoundingClientRect();
      const p = g.querySelector('path.react-flow__edge-path')?.getBoundingClientRect();
      if (!a || !b || !p) continue;
      const m = 12;
      const inside = p.left >= Math.min(a.left, b.left) - m && p.right <= Math.max(a.right, b.right) + m && p.top >= Math.min(a.top, b.top) - m && p.bottom <= Math.max(a.bottom, b.bottom) + m;
      if (!inside) bad.push(id);
    }
    return bad;
  });
}

test('each template opens top to bottom at a readable zoom; no duplicates by accident', async () => {
  await page.getByTestId('tab-projects').click();
  await page.getByTestId('template-gallery').waitFor();
  const keys = await page.locator('[data-testid^="template-"][aria-pressed]').evaluateAll((els) => els.map((e) => e.dataset.testid.slice('template-'.length)));
  assert.ok(keys.length >= 7, `templates found: ${keys}`);
  // Every card shows the backend's shapes and parameter count, and a description.
  await until(async () => (await page.getByTestId('template-facts').allTextContents()).every((t) => /→.*params/.test(t)), 10_000, 'the cards analysed');
  await shot(page, 'q05_template_gallery');
  for (const key of keys) {
    await page.getByTestId(`template-${key}`).click();
    const name = page.getByTestId('template-name');
    assert.equal(await name.inputValue(), key, 'the name is prefilled');
    await page.getByTestId('template-create').click();
    await until(async () => (await page.locator('.top-bar .project').textContent()).startsWith(`${key} v1`), 5000, `${key} opened`);
    await until(async () => (await page.getByTestId('status-valid').textContent()).includes('✓ valid'), 10_000, `${key} valid`);
    await idle();
    assert.equal(await page.locator('.has-error').count(), 0, `${key} has no node errors`);
    await page.waitForTimeout(300); // the fit's animation
    const z = await zoom();
    assert.ok(z >= 0.6 && z <= 1, `${key} opened at zoom ${z}`);
    assert.equal(await page.getByTestId('direction').textContent(), '↓', `${key} runs top to bottom`);
    assert.deepEqual(await loopEdges(), [], `${key}: no edge loops around a node`);
    if (key === 'resnet_mini') await shot(page, 'q06_template_resnet_mini');
  }
  // Layout in the other direction draws no loops either.
  await page.getByTestId('direction').click();
  await page.waitForTimeout(400);
  assert.deepEqual(await loopEdges(), [], 'left to right: no loops');
  await shot(page, 'q07_template_left_to_right');
  await page.getByTestId('direction').click();
  await page.waitForTimeout(400);
  assert.deepEqual(await loopEdges(), [], 'back to top to bottom: no loops');

  // Choosing the same template again does not make a second project by accident.
  const before = (await page.locator('.projects .list li').count());
  await page.getByTestId(`template-${keys[0]}`).click();
  await page.getByTestId('template-exists').waitFor();
  assert.equal(await page.getByTestId('template-create').isDisabled(), true);
  const name = page.getByTestId('template-name');
  await name.click();
  await name.press('End');
  await name.pressSequentially(' copy');
  assert.equal(await page.getByTestId('template-create').isDisabled(), false);
  assert.equal(await page.locator('.projects .list li').count(), before);
});

test('an edit is marked unsaved, survives a reload as a draft, and restores', async () => {
  await page.getByTestId('tab-projects').click();
  await page.locator('.projects .list button.link', { hasText: 'Demo: digits CNN' }).click();
  await until(async () => (await page.locator('.top-bar .project').textContent()).startsWith('Demo: digits CNN v1'), 5000, 'the demo open');
  // The earlier tests rebuilt the demo's canvas without saving: that draft is offered; drop it.
  await page.getByTestId('draft-banner').waitFor();
  await page.getByTestId('draft-discard').click();
  await until(async () => (await badge(page, 'conv1')) === '8×8×8', 5000, 'the demo analysed');
  assert.equal(await page.getByTestId('unsaved').count(), 0, 'nothing unsaved on opening');
  await page.getByTestId('tab-inspector').click();
  await node('conv1').click();
  const channels = page.getByTestId('field-out_channels').locator('input');
  await channels.click();
  await channels.press('Control+a');
  await channels.pressSequentially('12');
  await until(async () => (await badge(page, 'conv1')) === '12×8×8', 5000, 'the edit analysed');
  await page.getByTestId('unsaved').waitFor();

  // Leaving asks first.
  const dialogs = [];
  page.on('dialog', (d) => {
    dialogs.push(d.type());
    void d.accept();
  });
  await page.reload();
  assert.deepEqual(dialogs, ['beforeunload'], 'the leave prompt showed');
  await page.getByTestId('draft-banner').waitFor();
  await until(async () => (await badge(page, 'conv1')) === '8×8×8', 10_000, 'the saved version on the canvas until the draft is restored');
  await shot(page, 'q08_draft_banner');
  await page.getByTestId('draft-restore').click();
  await until(async () => (await badge(page, 'conv1')) === '12×8×8', 5000, 'the draft restored');
  await page.getByTestId('unsaved').waitFor();

  // Saving (as Train does) says which version it made, and the draft is done with.
  await page.keyboard.press('Control+s');
  await until(async () => /Saved version 2/.test((await page.locator('.notice').textContent()) ?? ''), 5000, 'the saved notice');
  await until(async () => (await page.getByTestId('unsaved').count()) === 0, 3000, 'saved');
  await page.reload();
  await until(async () => (await badge(page, 'conv1')) === '12×8×8', 10_000, 'version 2 opened');
  assert.equal(await page.getByTestId('draft-banner').count(), 0, 'no draft after saving');

  // Discard drops the draft for good.
  await node('conv1').click();
  await channels.click();
  await channels.press('Control+a');
  await channels.pressSequentially('4');
  await page.getByTestId('unsaved').waitFor();
  await page.reload();
  await page.getByTestId('draft-discard').click();
  await page.reload();
  await until(async () => (await badge(page, 'conv1')) === '12×8×8', 10_000, 'the saved version');
  assert.equal(await page.getByTestId('draft-banner').count(), 0);
});

/** Drags a node by its header with the mouse to a point on the page. */
async function dragNode(id, to) {
  const head = node(id).locator('.node-head').first();
  const b = await head.boundingBox();
  await page.mouse.move(b.x + 30, b.y + b.height / 2);
  await page.mouse.down();
  await page.mouse.move(b.x + 40, b.y + 20, { steps: 3 });
  await page.mouse.move(to.x, to.y, { steps: 12 });
  await page.mouse.up();
}

const edgeIds = () => page.locator('.react-flow__edge').evaluateAll((els) => els.map((e) => e.getAttribute('data-id')));

test('drawing: arrowheads, a residual skip path, dragging a layer into and out of a block, refused edges', async () => {
  await page.getByTestId('tab-inspector').click();
  await until(async () => (await badge(page, 'fc')) === '10', 10_000, 'the demo analysed');
  // Every edge ends in an arrowhead.
  const ends = await page.locator('.react-flow__edge path.react-flow__edge-path').evaluateAll((els) => els.map((e) => e.getAttribute('marker-end')));
  assert.ok(ends.length >= 7 && ends.every((m) => m && m.includes('url(')), `arrowheads: ${ends}`);

  await node('conv1').click();
  await node('bn1').click({ modifiers: ['Shift'] });
  await page.keyboard.press('Control+g');
  await node('block_1').waitFor();
  await page.keyboard.press('l'); // lay out so the block has room
  await page.waitForTimeout(300);
  await page.getByTestId('canvas').click({ position: { x: 30, y: 30 } });
  await until(async () => (await page.getByTestId('status-valid').textContent()).includes('✓ valid'), 5000, 'valid after grouping');

  // Drag relu1 (after the block) into the block: it follows bn1 inside; the block feeds pool1.
  const blockBox = await node('block_1').boundingBox();
  await dragNode('relu1', { x: blockBox.x + blockBox.width / 2, y: blockBox.y + blockBox.height - 16 });
  await until(async () => (await edgeIds()).includes('e_bn1__relu1'), 5000, 'relu1 after bn1 inside the block');
  const ids = await edgeIds();
  assert.ok(ids.includes('e_block_1__pool1'), `the block feeds pool1: ${ids}`);
  await until(async () => (await page.getByTestId('status-valid').textContent()).includes('✓ valid'), 5000, 'valid with relu1 inside');
  await shot(page, 'q09_dragged_into_block');

  // Out again, to empty canvas on the right: the block closes up, relu1 waits unconnected.
  const canvas = await page.getByTestId('canvas').boundingBox();
  await dragNode('relu1', { x: canvas.x + canvas.width - 120, y: canvas.y + 80 });
  await until(async () => !(await edgeIds()).includes('e_bn1__relu1'), 5000, 'relu1 out of the block');
  await until(async () => (await node('relu1').locator('[data-testid="unconnected-hint"]').count()) === 1, 5000, 'relu1 unconnected');
  assert.equal(await redErrors(), 0, 'dragging out is not an error');
  // One undo puts it back inside (the drag and the move are one step).
  await page.keyboard.press('Control+z');
  await until(async () => (await edgeIds()).includes('e_bn1__relu1'), 5000, 'undo: back inside');

  // An edge from inside the block to a top-level layer is refused while drawing, with the reason.
  const src = await node('bn1').locator('.react-flow__handle.source').boundingBox();
  const dst = await node('fc').locator('.react-flow__handle.target').boundingBox();
  await page.mouse.move(src.x + src.width / 2, src.y + src.height / 2);
  await page.mouse.down();
  await page.mouse.move(dst.x + 20, dst.y - 20, { steps: 6 });
  await page.mouse.move(dst.x + dst.width / 2, dst.y + dst.height / 2, { steps: 4 });
  const why = await until(async () => page.getByTestId('connect-refusal').textContent(), 3000, 'the refusal');
  assert.match(why, /bn1 is inside block_1 and fc is at the top level: an edge cannot cross a block's boundary/);
  await shot(page, 'q10_refused_edge');
  await page.mouse.up();
  assert.ok(!(await edgeIds()).includes('e_bn1__fc'), 'no edge made');

  // A cycle is refused too: fc back to pool1.
  const a = await node('fc').locator('.react-flow__handle.source').boundingBox();
  const b = await node('pool1').locator('.react-flow__handle.target').boundingBox();
  await page.mouse.move(a.x + a.width / 2, a.y + a.height / 2);
  await page.mouse.down();
  await page.mouse.move(b.x + 30, b.y + 30, { steps: 6 });
  await page.mouse.move(b.x + b.width / 2, b.y + b.height / 2, { steps: 4 });
  assert.match(await until(async () => page.getByTestId('connect-refusal').textContent(), 3000, 'the cycle refusal'), /would make a cycle/);
  await page.mouse.up();
  assert.ok(!(await edgeIds()).includes('e_fc__pool1'));

  // Residual: the skip path is drawn round the block.
  await page.getByTestId('residual-block_1').check();
  await page.getByTestId('skip-path-block_1').waitFor();
  await shot(page, 'q11_residual_skip_path');
  await page.getByTestId('residual-block_1').uncheck();
  assert.equal(await page.getByTestId('skip-path-block_1').count(), 0);
});

test('search-and-insert at the cursor, a wider side panel, dark mode from the system and the toggle', async () => {
  // `/` over the canvas opens the search box; typing key by key and Enter inserts there.
  const canvas = await page.getByTestId('canvas').boundingBox();
  const at = { x: canvas.x + canvas.width - 150, y: canvas.y + 120 };
  await page.mouse.click(at.x, at.y); // on the empty canvas (focus leaves any field)
  await page.keyboard.press('/');
  await page.getByTestId('quick-insert').waitFor();
  await page.keyboard.type('gelu');
  await shot(page, 'q12_quick_insert');
  await page.keyboard.press('Enter');
  await node('gelu_1').waitFor();
  const g = await node('gelu_1').boundingBox();
  assert.ok(Math.abs(g.x + g.width / 2 - at.x) < 40 && Math.abs(g.y + 20 - at.y) < 40, `inserted at the cursor: ${JSON.stringify(g)} vs ${JSON.stringify(at)}`);
  await page.keyboard.press('Delete'); // the new layer is selected
  await until(async () => (await node('gelu_1').count()) === 0, 3000, 'gelu_1 removed');
  // A double-click on the empty canvas opens it too; Escape closes it.
  await page.mouse.dblclick(canvas.x + 60, canvas.y + canvas.height - 60);
  await page.getByTestId('quick-insert').waitFor();
  await page.keyboard.press('Escape');
  await until(async () => (await page.getByTestId('quick-insert').count()) === 0, 2000, 'closed');

  // The side panel widens by dragging its edge; the code keeps whole lines (scrolls instead).
  await page.getByTestId('tab-code').click();
  const before = (await page.getByTestId('side-panel').boundingBox()).width;
  const split = await page.getByTestId('side-splitter').boundingBox();
  await page.mouse.move(split.x + 3, split.y + 200);
  await page.mouse.down();
  await page.mouse.move(split.x - 200, split.y + 200, { steps: 8 });
  await page.mouse.up();
  const after = (await page.getByTestId('side-panel').boundingBox()).width;
  assert.ok(after > before + 150, `side panel ${before} → ${after}`);
  await until(async () => (await page.getByTestId('code').textContent()).includes('nn.Conv2d'), 10_000, 'the code');
  const overflow = await page.getByTestId('code').evaluate((el) => getComputedStyle(el).overflowX);
  assert.equal(overflow, 'auto');
  await shot(page, 'q13_wide_code');

  // Dark mode: the system's preference is followed; the toggle overrides it.
  await page.emulateMedia({ colorScheme: 'dark' });
  await until(async () => (await page.evaluate(() => document.documentElement.dataset.theme)) === 'dark', 3000, 'dark from the system');
  const bg = await page.locator('.side').evaluate((el) => getComputedStyle(el).backgroundColor);
  assert.equal(bg, 'rgb(28, 34, 43)');
  await page.getByTestId('tab-inspector').click();
  await page.setViewportSize({ width: 1920, height: 1080 });
  await shot(page, 'q14_dark_1920');
  await page.setViewportSize({ width: 1440, height: 900 });
  await shot(page, 'q15_dark_1440');
  await page.setViewportSize({ width: 1280, height: 720 });
  await shot(page, 'q16_dark_1280');
  const toggle = page.getByTestId('theme-toggle');
  await toggle.click(); // system → dark (stays dark)
  await toggle.click(); // dark → light
  assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'light');
  await page.reload();
  await page.locator('.react-flow__node').first().waitFor();
  assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'light', 'the choice is kept');
  await page.getByTestId('theme-toggle').click(); // light → system (dark)
  assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), 'dark');
  await page.emulateMedia({ colorScheme: 'light' });
  await until(async () => (await page.evaluate(() => document.documentElement.dataset.theme)) === 'light', 3000, 'following the system back');
});
