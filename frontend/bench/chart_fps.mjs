// Frame rate of the training panel while the loss chart holds 2 series (raw and smoothed loss) of
// ≥ 50,000 points each and a real run keeps streaming steps into it over its websocket, against
// the same page with the run paused (no chart updates), in Chromium against a real backend.
// Frames are timed with requestAnimationFrame timestamps. Prints the figures; run `npm run build`
// first.
//   node bench/chart_fps.mjs [--points 50000] [--seconds 10]
import { startBackend, startBrowser } from '../e2e/harness.mjs';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const POINTS = arg('points', 50_000);
const SECONDS = arg('seconds', 10);

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

// The smallest real model: 2-D blobs → Linear → 4 classes, so that steps come fast enough to
// reach 50,000 points in well under a minute. 100,000 samples: few epoch boundaries.
const graph = {
  format: 'layerlab.graph/1',
  name: 'chart_fps',
  nodes: [
    { id: 'input_1', op: 'Input', params: { shape: [2] }, position: { x: 0, y: 0 } },
    { id: 'linear_1', op: 'Linear', params: { out_features: 4 }, position: { x: 0, y: 120 } },
    { id: 'output_1', op: 'Output', params: {}, position: { x: 0, y: 240 } },
  ],
  edges: [
    { id: 'e0', source: 'input_1', target: 'linear_1' },
    { id: 'e1', source: 'linear_1', target: 'output_1' },
  ],
};
const config = {
  epochs: 100_000,
  max_steps: 10_000_000,
  layer_stats_every: 0,
  data: { dataset: 'blobs', n_samples: 100_000, batch_size: 8 },
};

/** requestAnimationFrame timestamps over `ms`, and in which frame each chart called setData (its
 * draw counter changing while that frame's animation callbacks run), to count calls per frame. */
function measureFrames(ms) {
  return new Promise((resolve) => {
    const charts = [...document.querySelectorAll('.uplot[data-testid]')];
    const calls = charts.map(() => []);
    const obs = new MutationObserver((records) => {
      const now = window.__frameTime;
      for (const r of records) {
        const i = charts.indexOf(r.target);
        if (i >= 0) calls[i].push(now);
      }
    });
    for (const c of charts) obs.observe(c, { attributes: true, attributeFilter: ['data-draws'] });
    // Chromium's long-animation-frame entries (frames over 50 ms): what ran in them.
    const long = [];
    const loaf = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        long.push({
          start: e.startTime, duration: e.duration, blocking: e.blockingDuration,
          render: e.renderStart ? e.startTime + e.duration - e.renderStart : 0,
          layout: e.styleAndLayoutStart ? e.startTime + e.duration - e.styleAndLayoutStart : 0,
          scripts: e.scripts.map((x) => ({ invoker: x.invoker, type: x.invokerType, fn: x.sourceFunctionName, duration: x.duration, forcedLayout: x.forcedStyleAndLayoutDuration })),
        });
      }
    });
    loaf.observe({ type: 'long-animation-frame', buffered: false });
    const times = [];
    const tick = (t) => {
      times.push(t);
      if (t - times[0] < ms) return requestAnimationFrame(tick);
      obs.disconnect();
      loaf.disconnect();
      resolve({ long, times, charts: charts.map((c, i) => ({ id: c.dataset.testid, calls: calls[i].filter((x) => x >= times[0] && x <= times[times.length - 1]), points: Number(c.dataset.points ?? 0) })) });
    };
    requestAnimationFrame(tick);
  });
}

/** Frame figures; `period` is the display's frame period (the idle page's median interval). */
function summarise({ times, charts }, period) {
  const dts = times.slice(1).map((t, i) => t - times[i]);
  const slots = dts.map((dt) => Math.max(1, Math.round(dt / period)));
  const dropped = slots.reduce((a, s) => a + s - 1, 0) / slots.reduce((a, s) => a + s, 0);
  const frames = dts.length;
  const span = (times[times.length - 1] - times[0]) / 1000;
  // setData calls per frame, keyed by the timestamp of the frame they ran in.
  const perFrame = (calls) => {
    const n = new Map(times.map((t) => [t, 0]));
    for (const x of calls) n.set(x, (n.get(x) ?? 0) + 1);
    return [...n.values()];
  };
  const loss = charts.find((c) => c.id === 'chart-step-loss');
  const lossFrames = perFrame(loss?.calls ?? []);
  const allFrames = perFrame(charts.flatMap((c) => c.calls));
  return {
    median: pct(dts, 50),
    fps: frames / span,
    p95: pct(dts, 95),
    max: Math.max(...dts),
    dropped,
    frames,
    lossPerFrame: lossFrames.reduce((a, b) => a + b, 0) / frames,
    lossMaxInOneFrame: Math.max(0, ...lossFrames),
    allPerFrame: allFrames.reduce((a, b) => a + b, 0) / frames,
    allMaxInOneFrame: Math.max(0, ...allFrames),
    charts: charts.filter((c) => c.calls.length).map((c) => c.id),
    points: loss?.points ?? 0,
  };
}

/** Where the main thread's time goes while streaming: a Chromium timeline trace of `ms`. */
async function traceBreakdown(browser, page, ms) {
  await browser.startTracing(page, { categories: ['devtools.timeline', 'disabled-by-default-devtools.timeline'] });
  await page.waitForTimeout(ms);
  const trace = JSON.parse(String(await browser.stopTracing()));
  const events = trace.traceEvents ?? trace;
  const main = events.find((e) => e.name === 'thread_name' && e.args?.name === 'CrRendererMain');
  const onMain = events.filter((e) => e.ph === 'X' && e.dur && (!main || (e.pid === main.pid && e.tid === main.tid)));
  const by = new Map();
  for (const e of onMain) {
    const r = by.get(e.name) ?? { total: 0, n: 0, durs: [] };
    r.total += e.dur / 1000;
    r.n += 1;
    r.durs.push(e.dur / 1000);
    by.set(e.name, r);
  }
  const pick = ['FireAnimationFrame', 'FunctionCall', 'RunMicrotasks', 'V8.GCScavenger', 'MinorGC', 'MajorGC', 'UpdateLayoutTree', 'Layout', 'PrePaint', 'Paint', 'Layerize', 'UpdateLayer', 'ParseHTML', 'EventDispatch'];
  return pick.filter((n) => by.has(n)).map((n) => ({ name: n, ...by.get(n) }));
}

const backend = await startBackend();
const { browser, page } = await startBrowser();
const api = async (method, url, body) => {
  const res = await fetch(`${backend.url}${url}`, { method, headers: { 'Content-Type': 'application/json' }, body: body ? JSON.stringify(body) : undefined });
  if (!res.ok) throw new Error(`${method} ${url}: ${res.status} ${await res.text()}`);
  return res.json();
};
let runId = null;
let otherRunId = null;
try {
  const project = await api('POST', '/api/projects', { name: 'chart_fps', graph });
  runId = (await api('POST', '/api/runs', { project_id: project.id, config })).id;

  // Test-side instrumentation: the timestamp of the frame whose animation callbacks are running.
  await page.addInitScript(() => {
    const raf = window.requestAnimationFrame.bind(window);
    window.requestAnimationFrame = (cb) =>
      raf((t) => {
        window.__frameTime = t;
        cb(t);
      });
  });
  // The page opens the project and follows its live run, as after any reload.
  await page.addInitScript((id) => localStorage.setItem('layerlab_project', id), project.id);
  await page.goto(backend.url);
  await page.getByTestId('tab-train').click();
  const chart = page.locator('[data-testid="chart-step-loss"]');
  await chart.waitFor();
  const series = await chart.locator('.u-legend .u-series').count(); // the x column counts as one
  const t0 = Date.now();
  await page.waitForFunction((n) => Number(document.querySelector('[data-testid="chart-step-loss"]')?.dataset.points ?? 0) >= n, POINTS, { timeout: 600_000, polling: 500 });
  const fill = (Date.now() - t0) / 1000;

  // Baseline: the same page, the chart holding the same points, the run paused: no updates.
  await api('POST', `/api/runs/${runId}/pause`);
  await page.waitForFunction(() => document.querySelector('[data-testid="train-resume"]'), null, { timeout: 30_000 });
  await page.waitForTimeout(500);
  const idle = await page.evaluate(measureFrames, SECONDS * 1000);
  const period = pct(idle.times.slice(1).map((t, i) => t - idle.times[i]), 50);
  const base = summarise(idle, period);

  // Streaming: the run goes on, its step events arriving over the websocket.
  await api('POST', `/api/runs/${runId}/resume`);
  await page.waitForFunction((n) => Number(document.querySelector('[data-testid="chart-step-loss"]')?.dataset.points ?? 0) > n, base.points, { timeout: 30_000 });
  const wsBefore = await page.evaluate(() => performance.now());
  const liveRaw = await page.evaluate(measureFrames, SECONDS * 1000);
  const live = summarise(liveRaw, period);
  const stepsPerS = (live.points - base.points) / ((await page.evaluate(() => performance.now())) - wsBefore) * 1000;
  const breakdown = await traceBreakdown(browser, page, 3000);

  // Busy baseline: the watched run stopped (the chart keeps its points, no updates), while the
  // same training runs in another project: the machine as loaded as while streaming, the page idle.
  await api('POST', `/api/runs/${runId}/stop`);
  await page.waitForFunction(() => document.querySelector('[data-testid="run-status"]')?.dataset.status === 'stopped', null, { timeout: 30_000 });
  const other = await api('POST', '/api/projects', { name: 'chart_fps_load', graph });
  otherRunId = (await api('POST', '/api/runs', { project_id: other.id, config })).id;
  for (let i = 0; (await api('GET', `/api/runs/${otherRunId}`)).step < 100; i++) {
    if (i > 300) throw new Error('the load run did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  const busyRaw = await page.evaluate(measureFrames, SECONDS * 1000);
  const busy = summarise(busyRaw, period);

  const f = (x, d = 1) => x.toFixed(d);
  const line = (name, s) =>
    `${name}: median frame interval ${f(s.median, 2)} ms, ${f(s.fps)} fps, p95 ${f(s.p95, 1)} ms, max ${f(s.max, 1)} ms, dropped ${f(s.dropped * 100, 1)} % of ${s.frames} frames; loss chart setData per frame ${f(s.lossPerFrame, 2)} (most in one frame ${s.lossMaxInOneFrame}); all charts ${f(s.allPerFrame, 2)} (most ${s.allMaxInOneFrame}; ${s.charts.join(', ') || 'none'})`;
  console.log(`loss chart: ${series - 1} series, ${base.points.toLocaleString('en')} points each at the start (reached in ${f(fill, 0)} s), ${live.points.toLocaleString('en')} at the end; ${f(stepsPerS, 0)} points/s streamed`);
  console.log(line('idle (run paused)', base));
  console.log(line('streaming', live));
  console.log(line('busy (run stopped, the same training in another project)', busy));
  console.log(`ratios streaming/idle: median interval ${f(live.median / base.median, 2)}×, fps ${f(live.fps / base.fps, 2)}×, p95 ${f(live.p95 / base.p95, 2)}×, dropped ${f(live.dropped * 100, 1)} % vs ${f(base.dropped * 100, 1)} % (goal: 60 fps, the idle page's rate)`);
  const longFrames = (name, entries) => {
    console.log(`${name}: ${entries.length} long animation frames (> 50 ms)`);
    for (const e of entries) {
      const js = e.scripts.reduce((a, x) => a + x.duration, 0);
      const what = e.scripts.map((x) => `${x.type} ${x.invoker}${x.fn ? ` (${x.fn})` : ''} ${f(x.duration, 0)} ms`).join('; ');
      console.log(`  ${f(e.duration, 0)} ms: scripts ${f(js, 0)} ms, style+layout+paint ${f(e.layout, 0)} ms, blocking ${f(e.blocking, 0)} ms${what ? ` — ${what}` : ''}`);
    }
  };
  longFrames('idle', idle.long);
  longFrames('streaming', liveRaw.long);
  longFrames('busy', busyRaw.long);
  console.log('main thread over 3 s of streaming (Chromium trace):');
  for (const b of breakdown) console.log(`  ${b.name}: ${f(b.total, 0)} ms in ${b.n} (median ${f(pct(b.durs, 50), 2)} ms, p95 ${f(pct(b.durs, 95), 2)} ms, max ${f(Math.max(...b.durs), 1)} ms)`);
} finally {
  for (const id of [runId, otherRunId]) if (id) await api('POST', `/api/runs/${id}/stop`).catch(() => {});
  await browser.close();
  await backend.stop();
}
