// Training lives apart from the editor so that streaming points never re-render the canvas.
// The run's columns (RunSeries) are mutated in place and charts are told to redraw through a
// listener set, once per animation frame; the store itself only changes for status, the step
// counter and the per-layer stats the canvas tints nodes with.
import { create } from 'zustand';
import { api, runEventsUrl, statusEventsUrl } from '../api/client';
import type { DatasetList, LayerOutput, LayerSnapshot, Metrics, RunConfig, RunDetail, RunEvent, RunSummary, WeightsInfo } from '../api/types';
import { type ConfigDraft, type GroupModel, type RunConfigForm, formModel, setAt } from '../lib/runForm';
import { readPref, writePref } from '../lib/prefs';
import { createFrameBatcher } from './frameBatcher';
import { useProject } from './projectStore';
import { type Changes, type LayerLive, type RunSeries, type RunStatus, applyEvents, applyLayerStats, applyStarted, emptySeries, isTerminal } from './runSeries';

export interface TrainingState {
  activeRunId: string | null;
  /** The project the watched run belongs to: its stats tint only that project's canvas. */
  runProject: string | null;
  /** The graph version the watched run trained. */
  runVersion: number | null;
  status: RunStatus;
  step: number;
  totalSteps: number | null;
  epoch: number;
  samplesPerS: number | null;
  layers: Record<string, LayerLive>;
  /** The watched run's latest layer snapshot (once an epoch). */
  snapshot: LayerSnapshot | null;
  warnings: string[];
  failure: RunSeries['failure'];
  /** Why the run waits (queue place, start phase) or how it stopped short, in words. */
  statusNote: string | null;
  /** Uploaded weights the next run starts from (names and shapes are checked against the graph). */
  initWeights: WeightsInfo | null;
  checkpoints: number;
  runs: RunSummary[];
  datasets: DatasetList | null;
  /** Runs drawn over the active one in the charts. */
  overlays: string[];
  error: string | null;
  connected: boolean;
  /** The run form, from the API's RunConfig schema and layout. */
  form: GroupModel[] | null;
  /** The next run's settings: only what differs from the schema's defaults, or a run's config. */
  draft: ConfigDraft;
  /** Settings whose typed text is not a valid value (path → why): the run cannot start. */
  invalid: Record<string, string>;
  /** The watched run's stored record: its exact config and graph version. */
  detail: RunDetail | null;
  /** The run header's facts (device, precision, dataset sizes) from run_started. */
  header: Pick<RunSeries, 'hardware' | 'dataset' | 'stepsPerEpoch'> | null;
}

/** What the store holds about the watched run when no run is watched. */
const NO_RUN = {
  activeRunId: null,
  runProject: null,
  runVersion: null,
  status: 'idle',
  step: 0,
  totalSteps: null,
  epoch: 0,
  samplesPerS: null,
  layers: {},
  snapshot: null,
  warnings: [],
  failure: null,
  statusNote: null,
  checkpoints: 0,
  overlays: [],
  connected: false,
  detail: null,
  header: null,
} satisfies Partial<TrainingState>;

export const useTraining = create<TrainingState>()(() => ({
  ...NO_RUN,
  runs: [],
  datasets: null,
  initWeights: null,
  error: null,
  form: null,
  draft: {},
  invalid: {},
}));

type Listener = (series: RunSeries, changes: Changes) => void;
const listeners = new Set<Listener>();
export function onSeries(fn: Listener): () => void {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

let series: RunSeries = emptySeries('');
export const currentSeries = () => series;
/** Finished runs' columns, loaded from their metrics, for overlaid curves. */
export const overlaySeries = new Map<string, RunSeries>();

let socket: WebSocket | null = null;
let reconnectTimer: ReturnType<typeof setTimeout> | null = null;

const batcher = createFrameBatcher<RunEvent | { type: 'resync' }>((items) => {
  const events: RunEvent[] = [];
  let resync = false;
  for (const it of items) {
    if (it.type === 'resync') resync = true;
    else events.push(it as RunEvent);
  }
  if (events.length) publish(applyEvents(series, events));
  if (resync || series.gap) void reload(series.runId);
});

function publish(changes: Changes) {
  for (const l of listeners) l(series, changes);
  const s = useTraining.getState();
  const patch: Partial<TrainingState> = {};
  if (s.status !== series.status) patch.status = series.status;
  if (s.step !== series.step) patch.step = series.step;
  if (s.totalSteps !== series.totalSteps) patch.totalSteps = series.totalSteps;
  const epoch = series.epochX.length ? series.epochX[series.epochX.length - 1] : 0;
  if (s.epoch !== epoch) patch.epoch = epoch;
  if (s.samplesPerS !== series.samplesPerS) patch.samplesPerS = series.samplesPerS;
  if (changes.layers) patch.layers = series.layers;
  if (changes.layers && s.snapshot !== series.snapshot) patch.snapshot = series.snapshot;
  if (changes.status) {
    if (series.hardware && s.header?.hardware !== series.hardware) {
      patch.header = { hardware: series.hardware, dataset: series.dataset, stepsPerEpoch: series.stepsPerEpoch };
    }
    patch.warnings = [...series.warnings];
    patch.failure = series.failure;
    patch.statusNote = series.statusNote;
    patch.checkpoints = series.checkpoints.length;
  }
  if (Object.keys(patch).length) useTraining.setState(patch);
  if (changes.status && isTerminal(series.status)) void refreshRuns();
}

/** Columns from the stored metrics (everything up to metrics.last_seq). */
export function seriesFromMetrics(runId: string, m: Metrics): RunSeries {
  const s = emptySeries(runId);
  s.lastSeq = m.last_seq;
  s.status = m.status;
  for (const [x, y] of m.steps) {
    s.stepX.push(x);
    s.stepLoss.push(y);
  }
  for (const [x, y] of m.lr) {
    s.lrX.push(x);
    s.lr.push(y);
  }
  for (const [x, t] of m.times ?? []) {
    s.timeX.push(x);
    s.time.push(t);
  }
  if (m.started) applyStarted(s, m.started as Extract<RunEvent, { type: 'run_started' }>);
  for (const ev of m.layer_stats ?? []) applyLayerStats(s, ev as Extract<RunEvent, { type: 'layer_stats' }>);
  s.snapshot = (m.snapshot as LayerSnapshot | null | undefined) ?? null;
  for (const e of m.epochs) {
    s.epochX.push(e.epoch);
    s.trainLoss.push(e.train_loss);
    s.valLoss.push(e.val_loss ?? null);
    s.trainAcc.push(e.train_accuracy ?? null);
    s.valAcc.push(e.val_accuracy ?? null);
  }
  s.step = s.stepX.length ? s.stepX[s.stepX.length - 1] : 0;
  return s;
}

function closeSocket() {
  if (reconnectTimer) clearTimeout(reconnectTimer);
  reconnectTimer = null;
  if (socket) {
    socket.onclose = null;
    socket.onmessage = null;
    socket.close();
  }
  socket = null;
}

function connect(runId: string) {
  closeSocket();
  const ws = new WebSocket(runEventsUrl(runId, series.lastSeq));
  socket = ws;
  ws.onopen = () => useTraining.setState({ connected: true });
  ws.onmessage = (msg) => {
    try {
      batcher.push(JSON.parse(String(msg.data)));
    } catch {
      /* ignore a malformed frame */
    }
  };
  ws.onclose = (ev) => {
    if (socket !== ws) return;
    socket = null;
    useTraining.setState({ connected: false });
    batcher.flushNow();
    if (ev.code === 4404) {
      useTraining.setState({ error: 'run not found' });
      return;
    }
    // The server closes after the terminal event; anything else is a drop: pick up where we are.
    if (!isTerminal(series.status) && series.runId === runId) {
      reconnectTimer = setTimeout(() => connect(runId), 1000);
    }
  };
}

/** Loads the run's history, then streams what follows it: no gap, no duplicate. */
async function reload(runId: string) {
  if (!runId) return;
  closeSocket();
  batcher.dispose();
  const m = await api.runs.metrics(runId);
  if (series.runId !== runId && useTraining.getState().activeRunId !== runId) return;
  series = seriesFromMetrics(runId, m);
  // run_started (with total_steps) may lie before the stored history's end: take it from the run.
  const summary = useTraining.getState().runs.find((r) => r.id === runId);
  if (summary?.total_steps) series.totalSteps = summary.total_steps;
  publish({ steps: true, epochs: true, layers: true, status: true });
  if (!isTerminal(series.status)) connect(runId);
}

/** The open project's runs, newest first (none for a project not saved yet). */
export async function refreshRuns(projectId: string | null = useProject.getState().projectId) {
  if (!projectId) {
    useTraining.setState({ runs: [] });
    return [];
  }
  try {
    const runs = await api.runs.list(projectId);
    // The project may have changed while the list was on its way.
    if (useProject.getState().projectId === projectId) useTraining.setState({ runs });
    return runs;
  } catch (e) {
    useTraining.setState({ error: e instanceof Error ? e.message : String(e) });
    return [];
  }
}

/** A layer's latest statistics, only if the watched run belongs to the open project; with the
 * run's graph version when the canvas has changed since (the tint is then from that version). */
/** What a layer made of the latest snapshot's sample, on the same terms as its statistics. */
export function useLayerSnapshot(id: string): { snapshot: LayerSnapshot; output: LayerOutput } | null {
  const projectId = useProject((s) => s.projectId);
  const snapshot = useTraining((s) => (projectId !== null && s.runProject === projectId ? s.snapshot : null));
  const output = snapshot?.layers.find((l) => l.node === id);
  return snapshot && output ? { snapshot, output } : null;
}

export function useLayerLive(id: string): { live: LayerLive | undefined; fromVersion: number | null } {
  const projectId = useProject((s) => s.projectId);
  const version = useProject((s) => s.version);
  const dirty = useProject((s) => s.dirty);
  const live = useTraining((s) => (projectId !== null && s.runProject === projectId ? s.layers[id] : undefined));
  const runVersion = useTraining((s) => s.runVersion);
  const stale = live !== undefined && runVersion !== null && (dirty || version !== runVersion);
  return { live, fromVersion: stale ? runVersion : null };
}

/** Keeps the run list fresh from the status websocket; returns a function that stops it. */
export function watchRunList(): () => void {
  let ws: WebSocket | null = null;
  let stopped = false;
  let pending: ReturnType<typeof setTimeout> | null = null;
  let retry: ReturnType<typeof setTimeout> | null = null;
  const open = () => {
    ws = new WebSocket(statusEventsUrl());
    ws.onmessage = () => {
      // Status changes come in bursts: refresh the list at most twice a second.
      if (pending) return;
      pending = setTimeout(() => {
        pending = null;
        void refreshRuns();
      }, 500);
    };
    ws.onclose = () => {
      if (!stopped) retry = setTimeout(open, 2000);
    };
  };
  open();
  return () => {
    stopped = true;
    if (pending) clearTimeout(pending);
    if (retry) clearTimeout(retry);
    if (ws) {
      ws.onclose = null;
      ws.close();
    }
  };
}

export const training = {
  /** Shows a run (live or finished): its history now, its live events as they come. */
  async watch(runId: string) {
    closeSocket();
    batcher.dispose();
    series = emptySeries(runId);
    const summary = useTraining.getState().runs.find((r) => r.id === runId);
    useTraining.setState({
      activeRunId: runId,
      runProject: summary?.project_id ?? null,
      runVersion: summary?.version ?? null,
      status: 'idle',
      step: 0,
      epoch: 0,
      samplesPerS: null,
      layers: {},
      snapshot: null,
      warnings: [],
      failure: null,
      error: null,
      detail: null,
      statusNote: null,
      header: null,
    });
    void api.runs
      .get(runId)
      .then((detail) => {
        if (useTraining.getState().activeRunId === runId) useTraining.setState({ detail, runProject: detail.project_id ?? null, runVersion: detail.version });
      })
      .catch(() => {
        /* the run list says what is wrong */
      });
    writePref('layerlab_active_run', runId);
    if (summary?.project_id) writePref(`layerlab_active_run:${summary.project_id}`, runId);
    await reload(runId);
  },

  async loadForm() {
    try {
      const doc = (await api.runConfigForm()) as unknown as RunConfigForm;
      useTraining.setState({ form: formModel(doc) });
    } catch (e) {
      useTraining.setState({ error: `Cannot load the run settings: ${e instanceof Error ? e.message : String(e)}` });
    }
  },

  /** One setting of the next run (undefined: back to the schema's default). */
  setSetting(path: string, value: unknown) {
    useTraining.setState((s) => ({ draft: setAt(s.draft, path, value) }));
  },

  setInvalid(path: string, error: string | null) {
    useTraining.setState((s) => {
      if ((s.invalid[path] ?? null) === error) return {};
      const invalid = { ...s.invalid };
      if (error) invalid[path] = error;
      else delete invalid[path];
      return { invalid };
    });
  },

  /** "Train again with these settings": a run's exact config becomes the next run's. */
  copySettings(config: ConfigDraft) {
    useTraining.setState({ draft: structuredClone(config), invalid: {} });
  },

  async setInitWeights(file: File | null) {
    useTraining.setState({ error: null, initWeights: null });
    if (!file) return;
    try {
      useTraining.setState({ initWeights: await api.uploadWeights(file) });
    } catch (e) {
      useTraining.setState({ error: e instanceof Error ? e.message : String(e) });
    }
  },

  async start(projectId: string, version: number, config: RunConfig, name?: string) {
    useTraining.setState({ error: null });
    const weights = useTraining.getState().initWeights;
    try {
      const accepted = await api.runs.create({
        project_id: projectId,
        version,
        config,
        ...(name ? { name } : {}),
        ...(weights ? { init_weights: weights.id } : {}),
      });
      await refreshRuns();
      await training.watch(accepted.id);
      return accepted.id;
    } catch (e) {
      useTraining.setState({ error: e instanceof Error ? e.message : String(e) });
      return null;
    }
  },

  async finetune(fromRunId: string, config?: RunConfig) {
    try {
      const accepted = await api.runs.finetune(fromRunId, config ? { config } : {});
      await refreshRuns();
      await training.watch(accepted.id);
    } catch (e) {
      useTraining.setState({ error: e instanceof Error ? e.message : String(e) });
    }
  },

  /** Continue the stopped run from its checkpoint; the chart goes on from the stored history. */
  async continueRun() {
    const id = useTraining.getState().activeRunId;
    if (!id) return;
    try {
      await api.runs.continue(id);
      await refreshRuns();
      await training.watch(id);
    } catch (e) {
      useTraining.setState({ error: e instanceof Error ? e.message : String(e) });
    }
  },

  async control(action: 'stop' | 'pause' | 'resume') {
    const id = useTraining.getState().activeRunId;
    if (!id) return;
    try {
      await api.runs[action](id);
    } catch (e) {
      useTraining.setState({ error: e instanceof Error ? e.message : String(e) });
    }
  },

  async toggleOverlay(runId: string) {
    const s = useTraining.getState();
    if (s.overlays.includes(runId)) {
      overlaySeries.delete(runId);
      useTraining.setState({ overlays: s.overlays.filter((r) => r !== runId) });
    } else {
      const m = await api.runs.metrics(runId);
      overlaySeries.set(runId, seriesFromMetrics(runId, m));
      useTraining.setState({ overlays: [...s.overlays, runId] });
    }
    for (const l of listeners) l(series, { steps: true, epochs: true, layers: false, status: false });
  },

  async loadDatasets() {
    try {
      useTraining.setState({ datasets: await api.datasets() });
    } catch (e) {
      useTraining.setState({ error: e instanceof Error ? e.message : String(e) });
    }
  },

  /** Nothing watched: the charts, tints and run facts go blank (another project is open). */
  detach() {
    closeSocket();
    batcher.dispose();
    series = emptySeries('');
    overlaySeries.clear();
    useTraining.setState(NO_RUN);
    publish({ steps: true, epochs: true, layers: true, status: true });
  },

  /** The open project changed: watch its own run (the one watched last time, or a live one). */
  async followProject(projectId: string | null) {
    if (useTraining.getState().runProject !== projectId || !projectId) training.detach();
    const runs = await refreshRuns(projectId);
    if (!projectId || useProject.getState().projectId !== projectId) return null;
    if (useTraining.getState().runProject === projectId) return useTraining.getState().activeRunId;
    const remembered = readPref(`layerlab_active_run:${projectId}`) ?? readPref('layerlab_active_run');
    const live = runs.find((r) => r.status === 'running' || r.status === 'queued' || r.status === 'paused');
    const pick = runs.find((r) => r.id === remembered) ?? live;
    if (!pick) return null;
    await training.watch(pick.id);
    return pick.id;
  },

  /** After a page load: continue the run that was being watched, and show its settings. */
  async resume() {
    const runId = await training.followProject(useProject.getState().projectId);
    if (!runId) return;
    // The form shows the settings the watched run was started with, not the defaults.
    try {
      const detail = await api.runs.get(runId);
      training.copySettings(detail.config);
    } catch {
      /* keep the defaults */
    }
  },
};

// Runs belong to their project: opening another one never shows this one's runs or stats.
useProject.subscribe((s, prev) => {
  if (s.projectId !== prev.projectId) void training.followProject(s.projectId);
});
