// A run's history as chart-ready columns, built from the backend's events. Pure: `applyEvents`
// mutates the series it is given (arrays grow in place so uPlot can take them without copying)
// and reports what changed. Events at or below the last seen seq are ignored, so replaying stored
// events and then the live stream never duplicates a point.
import type { LayerSnapshot, RunEvent } from '../api/types';

export type RunStatus = 'idle' | 'queued' | 'running' | 'paused' | 'finished' | 'failed' | 'stopped';

export interface LayerLive {
  grad_norm: number | null;
  weight_norm: number | null;
  update_ratio: number | null;
  dead_fraction: number | null;
}

/** What the layer panel's sparklines draw: one value per layer_stats event. */
export const LAYER_METRICS = ['grad_norm', 'weight_norm', 'update_ratio', 'dead_fraction'] as const;
export type LayerTrace = { step: number[] } & Record<(typeof LAYER_METRICS)[number], (number | null)[]>;

export interface RunSeries {
  runId: string;
  lastSeq: number;
  /** A seq was skipped: the stored history should be reloaded. */
  gap: boolean;
  status: RunStatus;
  step: number;
  totalSteps: number | null;
  stepX: number[];
  stepLoss: number[];
  lrX: number[];
  lr: number[];
  epochX: number[];
  trainLoss: (number | null)[];
  valLoss: (number | null)[];
  trainAcc: (number | null)[];
  valAcc: (number | null)[];
  layers: Record<string, LayerLive>;
  layersStep: number;
  /** Every layer_stats event so far, per node. */
  layerHistory: Record<string, LayerTrace>;
  /** The latest layer_snapshot: each layer's output on one validation sample, and its weights. */
  snapshot: LayerSnapshot | null;
  /** The smoothed step loss at the chart's smoothing weight (see smoothedLoss). */
  smoothed: Smoothed | null;
  warnings: string[];
  checkpoints: { step: number; epoch: number; reason: string }[];
  failure: { reason: string; hint?: string | null; node?: string | null } | null;
  dataset: { name: string; sample_shape: number[]; n_train: number; n_val: number } | null;
  /** Where and how it trains (from run_started): the run header. */
  hardware: { device: string; deviceName: string | null; threads: number | null; precision: string } | null;
  stepsPerEpoch: number | null;
  samplesPerS: number | null;
  /** (step, wall-clock seconds) at each step event: the time axis. */
  timeX: number[];
  time: number[];
  /** Why the run is waiting or how it ended short, in words (the backend's queue and start phases). */
  statusNote: string | null;
}

export function emptySeries(runId: string): RunSeries {
  return {
    runId,
    lastSeq: -1,
    gap: false,
    status: 'idle',
    step: 0,
    totalSteps: null,
    stepX: [],
    stepLoss: [],
    lrX: [],
    lr: [],
    epochX: [],
    trainLoss: [],
    valLoss: [],
    trainAcc: [],
    valAcc: [],
    layers: {},
    layersStep: -1,
    layerHistory: {},
    snapshot: null,
    smoothed: null,
    warnings: [],
    checkpoints: [],
    failure: null,
    dataset: null,
    hardware: null,
    stepsPerEpoch: null,
    samplesPerS: null,
    timeX: [],
    time: [],
    statusNote: null,
  };
}

const PHASES: Record<string, string> = {
  process: 'starting: worker process',
  data: 'starting: loading the data',
  model: 'starting: building the model',
};

export interface Changes {
  steps: boolean;
  epochs: boolean;
  layers: boolean;
  status: boolean;
}

const none = (): Changes => ({ steps: false, epochs: false, layers: false, status: false });

export function applyEvents(s: RunSeries, events: RunEvent[]): Changes {
  const changed = none();
  for (const ev of events) {
    const seq = ev.seq ?? 0;
    if (seq <= s.lastSeq) continue;
    if (seq > s.lastSeq + 1 && s.lastSeq >= 0) s.gap = true;
    s.lastSeq = seq;
    switch (ev.type) {
      case 'run_queued':
        s.status = 'queued';
        s.statusNote = `#${ev.position} in the queue` + (ev.behind ? `, behind run ${ev.behind.slice(0, 8)}` : '');
        changed.status = true;
        break;
      case 'run_starting':
        // a stopped run that Continue starts again is queued until it runs, as the backend has it
        s.status = 'queued';
        s.statusNote = PHASES[ev.phase] ?? `starting: ${ev.phase}`;
        changed.status = true;
        break;
      case 'run_started':
        s.status = 'running';
        s.statusNote = null;
        applyStarted(s, ev);
        changed.status = true;
        break;
      case 'step': {
        for (const [x, y] of ev.points) {
          if (s.stepX.length && x <= s.stepX[s.stepX.length - 1]) continue;
          s.stepX.push(x);
          s.stepLoss.push(y);
        }
        s.lrX.push(ev.step);
        s.lr.push(ev.lr);
        s.timeX.push(ev.step);
        s.time.push(ev.time ?? 0);
        s.step = ev.step;
        s.samplesPerS = ev.samples_per_s;
        changed.steps = true;
        break;
      }
      case 'epoch': {
        const i = s.epochX.indexOf(ev.epoch);
        const at = i >= 0 ? i : s.epochX.length;
        s.epochX[at] = ev.epoch;
        s.trainLoss[at] = ev.train_loss;
        s.valLoss[at] = ev.val_loss ?? null;
        s.trainAcc[at] = ev.train_accuracy ?? null;
        s.valAcc[at] = ev.val_accuracy ?? null;
        changed.epochs = true;
        break;
      }
      case 'layer_stats':
        applyLayerStats(s, ev);
        changed.layers = true;
        break;
      case 'layer_snapshot':
        s.snapshot = ev;
        changed.layers = true;
        break;
      case 'checkpoint':
        s.checkpoints.push({ step: ev.step, epoch: ev.epoch, reason: ev.reason });
        changed.status = true;
        break;
      case 'warning':
        s.warnings.push(ev.message);
        changed.status = true;
        break;
      case 'run_paused':
        s.status = 'paused';
        changed.status = true;
        break;
      case 'run_resumed':
        s.status = 'running';
        changed.status = true;
        break;
      case 'run_finished':
        s.status = 'finished';
        s.statusNote = null;
        changed.status = true;
        break;
      case 'run_stopped':
        s.status = 'stopped';
        s.statusNote = ev.reason === 'interrupted' ? 'interrupted: the server stopped; Continue goes on from here' : null;
        changed.status = true;
        break;
      case 'run_failed':
        s.status = 'failed';
        s.statusNote = null;
        s.failure = { reason: ev.reason, hint: ev.hint, node: ev.node };
        changed.status = true;
        break;
    }
  }
  return changed;
}

type Started = Extract<RunEvent, { type: 'run_started' }>;
type LayerStats = Extract<RunEvent, { type: 'layer_stats' }>;

/** The latest statistics per node, and their history. Several modules can map to one node (a
 * block's copies): each figure is the largest of them. */
export function applyLayerStats(s: RunSeries, ev: LayerStats) {
  const layers: Record<string, LayerLive> = {};
  for (const l of ev.layers) {
    const prev = layers[l.node];
    const next = {} as LayerLive;
    for (const k of LAYER_METRICS) next[k] = max(prev?.[k] ?? null, l[k] ?? null);
    layers[l.node] = next;
  }
  s.layers = layers;
  s.layersStep = ev.step;
  for (const [node, live] of Object.entries(layers)) {
    const t = (s.layerHistory[node] ??= { step: [], grad_norm: [], weight_norm: [], update_ratio: [], dead_fraction: [] });
    if (t.step.length && ev.step <= t.step[t.step.length - 1]) continue;
    t.step.push(ev.step);
    for (const k of LAYER_METRICS) t[k].push(live[k]);
  }
}

/** The run header's facts from a run_started event (live, or the one the metrics carry). */
export function applyStarted(s: RunSeries, ev: Started) {
  s.totalSteps = ev.total_steps;
  s.stepsPerEpoch = ev.steps_per_epoch;
  s.dataset = { name: ev.dataset.name, sample_shape: ev.dataset.sample_shape, n_train: ev.dataset.n_train, n_val: ev.dataset.n_val };
  s.hardware = { device: ev.device, deviceName: ev.device_name ?? null, threads: ev.threads ?? null, precision: ev.precision };
}

function max(a: number | null, b: number | null): number | null {
  if (a === null) return b;
  if (b === null) return a;
  return Math.max(a, b);
}

/** Exponential moving average with TensorBoard's debiasing; weight 0 returns the input. */
export function smooth(values: number[], weight: number): number[] {
  if (weight <= 0) return values;
  return extendSmoothing({ weight, values: [], last: 0, n: 0 }, values);
}

/** A smoothed column and where its average stands, so that it can grow with its input. */
export interface Smoothed {
  weight: number;
  values: number[];
  last: number;
  n: number;
}

/** Smooths the points of `values` that `acc` does not cover yet (columns only grow at the end). */
function extendSmoothing(acc: Smoothed, values: number[]): number[] {
  const { weight, values: out } = acc;
  for (let i = out.length; i < values.length; i++) {
    const v = values[i];
    if (!Number.isFinite(v)) {
      out.push(v);
      continue;
    }
    acc.last = acc.last * weight + (1 - weight) * v;
    acc.n += 1;
    out.push(acc.last / (1 - Math.pow(weight, acc.n)));
  }
  return out;
}

/** The run's smoothed step loss: kept on the series and extended by the new points only, so a
 * chart update costs the new points, not the whole (50,000-point) curve. */
export function smoothedLoss(s: RunSeries, weight: number): number[] {
  if (weight <= 0) return s.stepLoss;
  if (!s.smoothed || s.smoothed.weight !== weight || s.smoothed.values.length > s.stepLoss.length) {
    s.smoothed = { weight, values: [], last: 0, n: 0 };
  }
  return extendSmoothing(s.smoothed, s.stepLoss);
}

export const isTerminal = (s: RunStatus) => s === 'finished' || s === 'failed' || s === 'stopped';
