// The editor's panels resize like a desktop app's: the layer palette's edge is dragged with the
// mouse (or moved with ← → when focused), its width survives a reload, and at any width its
// labels are whole (they wrap, never cut off). Against the real backend, in Chromium.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { openApp, shot, until } from './harness.mjs';

let app, page, consoleErrors;
before(async () => ({ page, consoleErrors } = app = await openApp({ viewport: { width: 1280, height: 720 } })));
after(() => app?.close());

const paletteWidth = async () => (await page.getByTestId('palette').boundingBox()).width;

/** Every palette label whose text does not fit in its item, or that sticks out of the palette. */
const cutLabels = () =>
  page.getByTestId('palette').evaluate((palette) => {
    const box = palette.getBoundingClientRect();
    const cut = [];
    for (const item of palette.querySelectorAll('.palette-item')) {
      const r = item.getBoundingClientRect();
      for (const span of item.querySelectorAll('span')) {
        const s = span.getBoundingClientRect();
        if (span.scrollWidth > span.clientWidth + 1 || s.right > r.right + 0.5 || s.left < r.left - 0.5) cut.push(span.textContent);
      }
      if (r.right > box.right + 0.5) cut.push(item.textContent);
    }
    if (palette.scrollWidth > palette.clientWidth) cut.push('(the palette scrolls sideways)');
    return cut;
  });

async function dragEdge(dx) {
  const edge = await page.getByTestId('palette-splitter').boundingBox();
  const y = edge.y + 300;
  await page.mouse.move(edge.x + edge.width / 2, y);
  await page.mouse.down();
  await page.mouse.move(edge.x + edge.width / 2 + dx / 2, y, { steps: 4 });
  await page.mouse.move(edge.x + edge.width / 2 + dx, y, { steps: 4 });
  await page.mouse.up();
}

test('the palette is widened and narrowed by dragging its edge; its labels are never cut', async () => {
  const splitter = page.getByRole('separator', { name: 'Resize the layer palette' });
  assert.equal(await splitter.count(), 1);
  const before = await paletteWidth();
  assert.deepEqual(await cutLabels(), []);

  await dragEdge(160);
  const wide = await paletteWidth();
  assert.ok(wide > before + 140 && wide < before + 180, `palette ${before} → ${wide}`);
  assert.equal(Number(await splitter.getAttribute('aria-valuenow')), Math.round(wide));
  assert.deepEqual(await cutLabels(), []);
  await shot(page, 'p1_palette_wide_1280');

  await page.reload();
  await page.getByTestId('palette-Conv2d').waitFor();
  assert.ok(Math.abs((await paletteWidth()) - wide) <= 1, 'the width is kept after a reload');

  await dragEdge(-600); // past the narrowest width it allows
  const narrow = await paletteWidth();
  assert.equal(narrow, Number(await splitter.getAttribute('aria-valuemin')));
  assert.deepEqual(await cutLabels(), [], 'labels at the narrowest palette');
  const canvas = await page.getByTestId('canvas').boundingBox();
  assert.ok(canvas.x >= narrow - 1, 'the canvas starts where the palette ends');
  await shot(page, 'p2_palette_narrow_1280');

  // the keyboard: focus the edge, → widens, ← narrows
  await splitter.focus();
  await page.keyboard.press('ArrowRight');
  await page.keyboard.press('ArrowRight');
  await until(async () => (await paletteWidth()) === narrow + 80, 3000, 'two steps wider');
  await page.keyboard.press('ArrowLeft');
  await until(async () => (await paletteWidth()) === narrow + 40, 3000, 'one step back');

  await page.setViewportSize({ width: 1440, height: 900 });
  await dragEdge(100);
  assert.deepEqual(await cutLabels(), []);
  await shot(page, 'p3_palette_1440');
  // the side panel keeps its own edge and width
  const side = await page.getByTestId('side-panel').boundingBox();
  assert.ok(side.width >= 320, `side panel ${side.width}`);
  assert.deepEqual(consoleErrors, []);
});

test('each side tab opens where it was left; selecting a node on the projects tab shows the node', async () => {
  await page.setViewportSize({ width: 1280, height: 720 });
  const body = page.locator('.side-body');
  const scrollTop = () => body.evaluate((el) => el.scrollTop);
  // the code view scrolls to a selected node's lines, far down the training script
  await page.getByTestId('tab-code').click();
  await page.getByTestId('code-tab-script').click();
  await page.locator('.react-flow__node[data-id="fc"]').click();
  await until(async () => (await scrollTop()) > 200, 5000, 'the code view scrolled to fc');
  const codeAt = await scrollTop();
  await page.getByTestId('tab-train').click();
  assert.equal(await scrollTop(), 0, 'the training form opens at its top, not at the code view\'s offset');
  await page.getByTestId('train-start').waitFor();
  assert.ok(await page.getByTestId('train-start').isVisible(), 'Train in view');
  await page.getByTestId('tab-code').click();
  await until(async () => Math.abs((await scrollTop()) - codeAt) <= 2, 5000, 'the code view back at fc\'s lines');
  // on the projects tab a click on a node opens its inspector
  await page.getByTestId('tab-projects').click();
  await page.locator('.react-flow__node[data-id="conv1"]').click();
  await until(async () => (await page.getByTestId('tab-inspector').getAttribute('class'))?.includes('active'), 3000, 'the inspector');
  assert.match(await page.locator('.side-body').textContent(), /conv1/);
  await shot(page, 'p4_tabs_inspector_1280');
  assert.deepEqual(consoleErrors, []);
});
