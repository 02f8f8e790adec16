// The augmentation chain and its preview against the real backend: steps added in the run form
// show as a chain, and the preview draws real 28×28 MNIST images as loaded and augmented.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { openApp, shot, typeInto, until } from './harness.mjs';

let app, page, consoleErrors;
before(async () => ({ page, consoleErrors } = app = await openApp()));
after(() => app?.close());

const form = () => page.getByTestId('run-form');
const field = (label) => form().getByLabel(label, { exact: true });

/** The canvases' pixels (red channel), read back from the page. */
const pixels = (row) =>
  page.getByTestId('augment-row').nth(row).locator('canvas').evaluateAll((canvases) =>
    canvases.map((c) => {
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      return { w: c.width, h: c.height, red: Array.from({ length: c.width * c.height }, (_, i) => d[4 * i]) };
    }),
  );

test('adding steps shows the chain and a preview of augmented MNIST digits', async () => {
  await page.getByTestId('tab-train').click();
  await form().waitFor();
  await field('Dataset').selectOption('mnist');
  assert.equal(await page.getByTestId('augment-panel').count(), 0, 'no augmentation, no panel');
  await form().locator('fieldset[data-group="data"] details summary').click();
  await field('Add Augment step').selectOption('RandomHorizontalFlip');
  const flipP = field('RandomHorizontalFlip P');
  await typeInto(page, flipP, '1');
  await until(async () => (await page.getByTestId('augment-row').count()) === 4, 20_000, 'four preview rows');
  assert.deepEqual(await page.getByTestId('augment-chain').locator('li').allTextContents(), ['RandomHorizontalFlip']);
  // Row by row: the image as loaded, then three draws; a flip with p = 1 mirrors every draw.
  await until(async () => {
    const [original, ...draws] = await pixels(0);
    if (original.w !== 28 || original.h !== 28 || draws.length !== 3) return false;
    const mirrored = original.red.map((_, i) => original.red[Math.floor(i / 28) * 28 + (27 - (i % 28))]);
    return draws.every((d) => d.red.every((v, i) => v === mirrored[i])) && original.red.some((v) => v > 200);
  }, 10_000, 'each draw to be the mirrored digit');
  const label = await page.getByTestId('augment-row').first().locator('figcaption').textContent();
  assert.match(label, /^[0-9]$/, 'the class of the image shows under it');

  await field('Add Augment step').selectOption('RandomCrop');
  await until(async () => (await page.getByTestId('augment-chain').locator('li').allTextContents()).join(' ') === 'RandomHorizontalFlip RandomCrop',
    10_000, 'the chain in order');
  // A padded crop shifts the digit: the draws differ from the plain mirror now.
  await until(async () => {
    const [original, ...draws] = await pixels(1);
    const mirrored = original.red.map((_, i) => original.red[Math.floor(i / 28) * 28 + (27 - (i % 28))]);
    return draws.some((d) => d.red.some((v, i) => v !== mirrored[i]));
  }, 10_000, 'the crops to move the digits');
  await page.setViewportSize({ width: 1280, height: 720 });
  await page.getByTestId('augment-panel').scrollIntoViewIfNeeded();
  await shot(page, 'augment_1280');
  await page.setViewportSize({ width: 1440, height: 900 });
  await page.getByTestId('augment-panel').scrollIntoViewIfNeeded();
  await shot(page, 'augment_1440');

  // A step that cannot apply says why, from the backend.
  await field('Dataset').selectOption('iris');
  await until(async () => (await page.getByTestId('augment-error').count()) === 1, 10_000, 'the error');
  assert.match(await page.getByTestId('augment-error').textContent(), /needs image samples \(C, H, W\)/);
  assert.deepEqual(consoleErrors.filter((e) => !/status of 422/.test(e)), []);
});
