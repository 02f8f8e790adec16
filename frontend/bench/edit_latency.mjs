// Edit latency on a 300-node graph: the time from typing a new value into the inspector to the
// canvas showing the backend's updated shape badge (request + render; an isolated edit is sent at
// once, bursts are throttled), in Chromium
// against a real backend. Prints the figures; run `npm run build` first.
//   node bench/edit_latency.mjs [--nodes 300] [--edits 15] [--all-visible]
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startBackend, startBrowser } from '../e2e/harness.mjs';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const N = arg('nodes', 300);
const EDITS = arg('edits', 15);

/** Input → (Conv2d → ReLU)×k → Flatten → Linear → Output, N nodes, laid out as a snake grid. */
function bigGraph(n) {
  const nodes = [{ id: 'input_1', op: 'Input', params: { shape: [1, 8, 8] } }];
  const pairs = Math.floor((n - 4) / 2);
  for (let i = 1; i <= pairs; i++) {
    nodes.push({ id: `conv2d_${i}`, op: 'Conv2d', params: { out_channels: 8, padding: 1 } });
    nodes.push({ id: `relu_${i}`, op: 'ReLU', params: {} });
  }
  while (nodes.length < n - 3) nodes.push({ id: `identity_${nodes.length}`, op: 'Identity', params: {} });
  nodes.push({ id: 'flatten_1', op: 'Flatten', params: {} }, { id: 'linear_1', op: 'Linear', params: { out_features: 10 } }, { id: 'output_1', op: 'Output', params: {} });
  const cols = 20;
  nodes.forEach((node, i) => {
    const row = Math.floor(i / cols);
    const col = row % 2 === 0 ? i % cols : cols - 1 - (i % cols);
    node.position = { x: col * 220, y: row * 110 };
  });
  const edges = nodes.slice(1).map((node, i) => ({ id: `e${i}`, source: nodes[i].id, target: node.id }));
  return { format: 'layerlab.graph/1', name: `bench_${n}`, nodes, edges };
}

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

const graph = bigGraph(N);
const file = path.join(mkdtempSync(path.join(tmpdir(), 'layerlab-bench-')), 'graph.json');
writeFileSync(file, JSON.stringify(graph));

const backend = await startBackend();
const { browser, page } = await startBrowser();
try {
  // The backend alone, for comparison.
  const server = [];
  for (let i = 0; i < EDITS; i++) {
    const t0 = performance.now();
    const res = await fetch(`${backend.url}/api/graphs/report`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(graph) });
    await res.json();
    server.push(performance.now() - t0);
  }

  // Test-side instrumentation: time each report request from inside the page.
  await page.addInitScript(() => {
    const orig = window.fetch.bind(window);
    window.__reports = [];
    window.fetch = async (input, init) => {
      const url = String(input);
      if (!url.includes('/api/graphs/report')) return orig(input, init);
      const rec = { start: performance.now() };
      window.__reports.push(rec);
      const res = await orig(input, init);
      const body = await res.clone().text();
      rec.end = performance.now();
      rec.bytes = body.length;
      return res;
    };
  });
  await page.goto(backend.url);
  await page.locator('.react-flow__node').first().waitFor();
  await page.getByTestId('tab-projects').click();
  await page.getByTestId('import-file').setInputFiles(file);
  // The view opens at a readable zoom at the graph's top-left: conv2d_1 is on screen, the far end
  // is not (only nodes on screen are rendered past 150 nodes).
  await page.locator('.react-flow__node[data-id="conv2d_1"]').waitFor();
  if (process.argv.includes('--all-visible')) {
    // Zoomed out until every node is on screen (and rendered): the heaviest canvas for an edit.
    await page.getByRole('button', { name: 'Fit', exact: true }).click();
    await page.locator('.react-flow__node[data-id="output_1"]').waitFor();
  }
  const count = await page.locator('.react-flow__node').count();
  const badgeSel = '.react-flow__node[data-id="conv2d_1"] [data-testid="shape-badge"]';
  await page.waitForFunction((sel) => document.querySelector(sel)?.textContent === '8×8×8', badgeSel);
  await page.getByTestId('tab-inspector').click();
  await page.locator('.react-flow__node[data-id="conv2d_1"]').click();
  const input = page.getByTestId('field-out_channels').locator('input');
  await input.waitFor();

  const e2e = [];
  const phases = [];
  for (let i = 0; i < EDITS; i++) {
    const value = 9 + (i % 2) * 3; // alternate 9, 12
    const want = `${value}×8×8`;
    await page.waitForTimeout(250); // edits at a person's pace: each one outside the previous throttle window
    // Time from the input event to the badge's text changing, measured in the page.
    const measured = page.evaluate(
      ([sel, text]) =>
        new Promise((resolve) => {
          const inputEl = document.querySelector('[data-testid="field-out_channels"] input');
          let t0 = 0;
          inputEl.addEventListener('input', () => (t0 = performance.now()), { once: true, capture: true });
          const done = () => {
            if (document.querySelector(sel)?.textContent === text && t0) {
              obs.disconnect();
              const r = window.__reports.filter((x) => x.start >= t0);
              resolve({ total: performance.now() - t0, toRequest: r.length ? r[0].start - t0 : NaN, request: r.length ? r[r.length - 1].end - r[r.length - 1].start : NaN, afterResponse: r.length ? performance.now() - r[r.length - 1].end : NaN });
            }
          };
          const obs = new MutationObserver(done);
          obs.observe(document.body, { subtree: true, childList: true, characterData: true });
        }),
      [badgeSel, want],
    );
    await input.fill(String(value));
    const m = await measured;
    e2e.push(m.total);
    phases.push(m);
  }
  const fmt = (xs) => `median ${pct(xs, 50).toFixed(0)} ms, p95 ${pct(xs, 95).toFixed(0)} ms, min ${Math.min(...xs).toFixed(0)} ms`;
  console.log(`graph: ${N} nodes (${count} rendered on screen), ${graph.edges.length} edges, ${EDITS} edits`);
  console.log(`edit → updated badge: ${fmt(e2e)} (goal: ≤ 50 ms)`);
  console.log(`  input → request sent: median ${pct(phases.map((p) => p.toRequest), 50).toFixed(0)} ms; request in the page: median ${pct(phases.map((p) => p.request), 50).toFixed(0)} ms; response → badge: median ${pct(phases.map((p) => p.afterResponse), 50).toFixed(0)} ms`);
  console.log(`POST /api/graphs/report alone (from node): ${fmt(server)}`);
} finally {
  await browser.close();
  await backend.stop();
}
