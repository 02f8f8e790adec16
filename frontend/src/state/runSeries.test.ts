import { describe, expect, it } from 'vitest';
import type { RunEvent } from '../api/types';
import { applyEvents, emptySeries, smooth, smoothedLoss } from './runSeries';
import { createFrameBatcher } from './frameBatcher';
import { seriesFromMetrics } from './trainingStore';

const step = (seq: number, points: [number, number][], lr = 0.01): RunEvent =>
  ({ type: 'step', run_id: 'r', seq, time: 0, step: points[points.length - 1][0], epoch: 1, points, lr, samples_per_s: 100 }) as RunEvent;

describe('applyEvents', () => {
  it('appends every loss point of a step event', () => {
    const s = emptySeries('r');
    const c = applyEvents(s, [step(0, [[1, 2.3], [2, 2.1]]), step(1, [[3, 1.9]])]);
    expect(c.steps).toBe(true);
    expect(s.stepX).toEqual([1, 2, 3]);
    expect(s.stepLoss).toEqual([2.3, 2.1, 1.9]);
    expect(s.step).toBe(3);
    expect(s.lastSeq).toBe(1);
  });

  it('ignores events already seen (history then live stream overlap)', () => {
    const s = emptySeries('r');
    applyEvents(s, [step(0, [[1, 2.3]]), step(1, [[2, 2.1]])]);
    const c = applyEvents(s, [step(1, [[2, 2.1]]), step(2, [[3, 1.5]])]);
    expect(s.stepX).toEqual([1, 2, 3]);
    expect(c.steps).toBe(true);
    expect(s.gap).toBe(false);
  });

  it('says why a run waits: its place in the queue, then the start phase', () => {
    const s = emptySeries('r');
    const ev = (seq: number, e: object) => ({ run_id: 'r', seq, time: 0, ...e }) as RunEvent;
    applyEvents(s, [ev(0, { type: 'run_queued', position: 2, behind: '0123456789abcdef' })]);
    expect([s.status, s.statusNote]).toEqual(['queued', '#2 in the queue, behind run 01234567']);
    applyEvents(s, [ev(1, { type: 'run_starting', phase: 'data' })]);
    expect(s.statusNote).toBe('starting: loading the data');
    applyEvents(s, [ev(2, { type: 'run_stopped', step: 5, epoch: 0, checkpoint: '/c', reason: 'interrupted' })]);
    expect([s.status, s.statusNote]).toEqual(['stopped', 'interrupted: the server stopped; Continue goes on from here']);
    // Continue: the same run starts again from its checkpoint; it no longer reads "stopped"
    applyEvents(s, [ev(3, { type: 'run_starting', phase: 'model' })]);
    expect(s.status).toBe('queued');
    expect(s.statusNote).toMatch(/^starting/);
  });

  it('keeps the latest layer snapshot, live or from the stored metrics', () => {
    const hist = { lo: -1, hi: 1, counts: [1, 2, 3], nonfinite: 0 };
    const snap = (seq: number, epoch: number) =>
      ({ type: 'layer_snapshot', run_id: 'r', seq, time: 0, step: epoch * 10, epoch, split: 'val', sample: 0,
         layers: [{ node: 'fc', path: 'fc', shape: [3], output: hist, maps: null, weights: hist }] }) as RunEvent;
    const s = emptySeries('r');
    expect(s.snapshot).toBeNull();
    const c = applyEvents(s, [snap(0, 1), step(1, [[11, 0.5]]), snap(2, 2)]);
    expect(c.layers).toBe(true);
    expect([s.snapshot?.epoch, s.snapshot?.layers[0].node]).toEqual([2, 'fc']);
    const latest = snap(7, 3) as Extract<RunEvent, { type: 'layer_snapshot' }>;
    const m = seriesFromMetrics('r', { run_id: 'r', status: 'finished', last_seq: 7, steps: [], lr: [], epochs: [], snapshot: latest });
    expect(m.snapshot).toEqual(latest);
    expect(seriesFromMetrics('r', { run_id: 'r', status: 'finished', last_seq: 7, steps: [], lr: [], epochs: [] }).snapshot).toBeNull();
  });

  it('flags a gap in seq', () => {
    const s = emptySeries('r');
    applyEvents(s, [step(0, [[1, 2.3]]), step(5, [[9, 2.1]])]);
    expect(s.gap).toBe(true);
  });

  it('tracks status, epochs, layer stats and failures', () => {
    const s = emptySeries('r');
    applyEvents(s, [
      { type: 'run_queued', run_id: 'r', seq: 0, time: 0, position: 1 },
      { type: 'epoch', run_id: 'r', seq: 1, time: 0, epoch: 1, step: 10, train_loss: 1, train_accuracy: 0.5, val_loss: 1.2, val_accuracy: 0.4, lr: 0.1, seconds: 1, partial: false },
      {
        type: 'layer_stats', run_id: 'r', seq: 2, time: 0, step: 10,
        layers: [
          { node: 'conv2d_1', path: 'conv2d_1', grad_norm: 0.5, weight_norm: 1, update_ratio: null, dead_fraction: null },
          { node: 'relu_1', path: 'b.0.relu_1', grad_norm: null, weight_norm: null, update_ratio: null, dead_fraction: 0.2 },
          { node: 'relu_1', path: 'b.1.relu_1', grad_norm: null, weight_norm: null, update_ratio: null, dead_fraction: 0.6 },
        ],
      },
    ] as RunEvent[]);
    expect(s.status).toBe('queued');
    expect(s.epochX).toEqual([1]);
    expect(s.valAcc).toEqual([0.4]);
    expect(s.layers.relu_1.dead_fraction).toBe(0.6);
    expect(s.layers.conv2d_1.grad_norm).toBe(0.5);
    applyEvents(s, [{ type: 'run_failed', run_id: 'r', seq: 3, time: 0, reason: 'boom', step: 3, hint: 'h', node: 'conv2d_1', errors: [] } as RunEvent]);
    expect(s.status).toBe('failed');
    expect(s.failure).toEqual({ reason: 'boom', hint: 'h', node: 'conv2d_1' });
  });
});

describe('smooth', () => {
  it('is the identity at 0 and debiased EMA otherwise', () => {
    expect(smooth([1, 2, 3], 0)).toEqual([1, 2, 3]);
    const out = smooth([2, 2, 2], 0.9);
    for (const v of out) expect(v).toBeCloseTo(2);
    const s = smooth([0, 10], 0.5);
    expect(s[0]).toBe(0);
    expect(s[1]).toBeCloseTo((0.5 * 0 * 0.5 + 0.5 * 10) / 0.75);
  });

  it("a run's smoothed loss grows with its points and equals smoothing the whole curve", () => {
    const s = emptySeries('r');
    applyEvents(s, [step(0, [[1, 2.3], [2, NaN], [3, 1.9]])]);
    const first = smoothedLoss(s, 0.6);
    expect(first).toEqual(smooth(s.stepLoss, 0.6));
    applyEvents(s, [step(1, [[4, 1.7], [5, 1.2]])]);
    const grown = smoothedLoss(s, 0.6);
    expect(grown).toBe(first); // the same column, extended by the new points only
    expect(grown).toEqual(smooth([2.3, NaN, 1.9, 1.7, 1.2], 0.6));
    expect(smoothedLoss(s, 0.9)).toEqual(smooth(s.stepLoss, 0.9)); // another weight starts over
    expect(smoothedLoss(s, 0)).toBe(s.stepLoss);
  });
});

describe('frameBatcher', () => {
  it('flushes everything pushed within a frame once', () => {
    const frames: (() => void)[] = [];
    const batches: number[][] = [];
    const b = createFrameBatcher<number>((items) => batches.push(items), (cb) => frames.push(cb), () => {});
    b.push(1);
    b.push(2);
    b.push(3);
    expect(frames).toHaveLength(1);
    expect(batches).toEqual([]);
    frames.shift()!();
    expect(batches).toEqual([[1, 2, 3]]);
    b.push(4);
    expect(frames).toHaveLength(1);
    frames.shift()!();
    expect(batches).toEqual([[1, 2, 3], [4]]);
  });
});

describe('seriesFromMetrics then live events', () => {
  it('continues after the stored history without duplicates', () => {
    const s = seriesFromMetrics('r', {
      run_id: 'r',
      status: 'running',
      last_seq: 4,
      steps: [[1, 2.0], [2, 1.9], [3, 1.8]],
      lr: [[3, 0.01]],
      epochs: [],
    });
    // The socket replays from after=last_seq; an overlapping event is ignored by seq.
    applyEvents(s, [step(4, [[3, 1.8]]), step(5, [[4, 1.7], [5, 1.6]])]);
    expect(s.stepX).toEqual([1, 2, 3, 4, 5]);
    expect(s.gap).toBe(false);
    expect(s.status).toBe('running');
  });
});

describe('layer statistics', () => {
  const stats = (seq: number, step: number, layers: object[]): RunEvent => ({ type: 'layer_stats', run_id: 'r', seq, time: 0, step, layers }) as RunEvent;
  it('keeps each node\'s history, the largest figure where several modules map to one node', () => {
    const s = emptySeries('r');
    applyEvents(s, [
      stats(0, 50, [
        { node: 'conv1', path: 'conv1', grad_norm: 0.5, weight_norm: 2, update_ratio: 1e-3 },
        { node: 'blk', path: 'blk.0.c', grad_norm: 0.1, weight_norm: 1 },
        { node: 'blk', path: 'blk.1.c', grad_norm: 0.3, weight_norm: 0.5 },
      ]),
      stats(1, 100, [{ node: 'conv1', path: 'conv1', grad_norm: 0.25, weight_norm: 2.1, update_ratio: 5e-4 }]),
    ]);
    expect(s.layerHistory.conv1).toEqual({ step: [50, 100], grad_norm: [0.5, 0.25], weight_norm: [2, 2.1], update_ratio: [1e-3, 5e-4], dead_fraction: [null, null] });
    expect(s.layerHistory.blk).toEqual({ step: [50], grad_norm: [0.3], weight_norm: [1], update_ratio: [null], dead_fraction: [null] });
    expect(s.layers.conv1.grad_norm).toBe(0.25);
    expect(s.layers.blk).toBeUndefined();
  });
});
