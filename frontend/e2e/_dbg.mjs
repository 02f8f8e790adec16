import { startBackend, startBrowser, shot, dropLayer, connectNodes } from './harness.mjs';
const be = await startBackend();
const { browser, page, consoleErrors } = await startBrowser();
try {
  await page.goto(be.url);
  await page.locator('.react-flow__node').first().waitFor();
  await page.getByTestId('canvas').click({ position: { x: 20, y: 20 } });
  await page.keyboard.press('Control+a');
  await page.keyboard.press('Delete');
  const CHAIN = ['Input', 'Conv2d', 'ReLU', 'MaxPool2d', 'Flatten', 'Linear', 'Output'];
  for (let i = 0; i < CHAIN.length; i++) await dropLayer(page, CHAIN[i], 330, 40 + i * 95);
  await shot(page, 'dbg1');
  const ids = await page.locator('.react-flow__node').evaluateAll((els) => els.map((e) => e.getAttribute('data-id')));
  for (let i = 0; i + 1 < ids.length; i++) { await connectNodes(page, ids[i], ids[i + 1]); console.log(i, await page.locator('.react-flow__edge').count()); }
  await shot(page, 'dbg2');
  console.log('errors', consoleErrors);
} finally {
  await browser.close();
  await be.stop();
}
