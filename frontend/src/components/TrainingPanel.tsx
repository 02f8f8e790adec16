import { useEffect, useMemo, useState } from 'react';
import uPlot from 'uplot';
import { api, downloadBlob } from '../api/client';
import type { RunConfig } from '../api/types';
import { formatNumber, formatShape } from '../lib/format';
import { editor, useEditor } from '../state/editorStore';
import { projects } from '../state/projectStore';
import { type RunSeries, isTerminal, smooth } from '../state/runSeries';
import { overlaySeries, refreshRuns, training, useTraining } from '../state/trainingStore';
import { Chart, type ChartSpec } from './Chart';

type Cfg = Required<Pick<RunConfig, 'epochs' | 'device' | 'precision'>> & {
  dataset: NonNullable<NonNullable<RunConfig['data']>['dataset']>;
  /** The upload's id when dataset is 'upload'. */
  upload: string | null;
  batch_size: number;
  loss: NonNullable<NonNullable<RunConfig['loss']>['name']>;
  optimizer: NonNullable<NonNullable<RunConfig['optimizer']>['name']>;
  lr: number;
  weight_decay: number;
  l1: number;
  schedule: NonNullable<NonNullable<RunConfig['schedule']>['name']>;
  init: NonNullable<NonNullable<RunConfig['init']>['scheme']>;
};

// Each list is checked against the generated RunConfig type.
const LOSSES = ['cross_entropy', 'nll', 'mse', 'l1', 'smooth_l1', 'bce_with_logits'] as const satisfies readonly Cfg['loss'][];
const OPTIMIZERS = ['adamw', 'adam', 'sgd', 'rmsprop'] as const satisfies readonly Cfg['optimizer'][];
const SCHEDULES = ['none', 'step', 'cosine', 'one_cycle'] as const satisfies readonly Cfg['schedule'][];
const PRECISIONS = ['fp32', 'bf16', 'fp16'] as const satisfies readonly Cfg['precision'][];
const INITS = ['default', 'kaiming_normal', 'kaiming_uniform', 'xavier_normal', 'xavier_uniform', 'orthogonal', 'normal', 'zeros'] as const satisfies readonly Cfg['init'][];

const DEFAULTS: Cfg = {
  dataset: 'digits',
  upload: null,
  batch_size: 64,
  loss: 'cross_entropy',
  optimizer: 'adamw',
  lr: 0.001,
  weight_decay: 0,
  l1: 0,
  schedule: 'none',
  init: 'default',
  epochs: 10,
  device: 'auto',
  precision: 'fp32',
};

function toRunConfig(c: Cfg): RunConfig {
  return {
    data: { dataset: c.dataset, batch_size: c.batch_size, ...(c.dataset === 'upload' && c.upload ? { upload: { path: c.upload } } : {}) },
    loss: { name: c.loss },
    optimizer: { name: c.optimizer, lr: c.lr, weight_decay: c.weight_decay, l1: c.l1 },
    schedule: { name: c.schedule },
    init: c.init === 'default' ? null : { scheme: c.init },
    epochs: c.epochs,
    device: c.device,
    precision: c.precision,
  } as RunConfig;
}

const COLORS = ['#2f6fdf', '#d9822b', '#2fa35a', '#b5477f', '#7a5cd6', '#888'];

export function TrainingPanel() {
  const [cfg, setCfg] = useState<Cfg>(DEFAULTS);
  const [smoothing, setSmoothing] = useState(0.6);
  const datasets = useTraining((s) => s.datasets);
  const status = useTraining((s) => s.status);
  const activeRunId = useTraining((s) => s.activeRunId);
  const error = useTraining((s) => s.error);
  const overlays = useTraining((s) => s.overlays);
  const inputShape = useEditor((s) => s.report?.input_shape ?? null);
  const valid = useEditor((s) => s.report?.valid ?? false);

  useEffect(() => {
    void training.loadDatasets();
    void refreshRuns();
  }, []);
  // The status bar's memory estimate follows the batch size and optimizer chosen here.
  useEffect(() => {
    if (cfg.batch_size >= 1) editor.setReportOptions({ batch_size: cfg.batch_size, optimizer: cfg.optimizer });
  }, [cfg.batch_size, cfg.optimizer]);

  const ds =
    cfg.dataset === 'upload'
      ? datasets?.uploads.find((u) => u.id === cfg.upload)
      : datasets?.builtin.find((d) => d.name === cfg.dataset);
  const dsLabel = cfg.dataset === 'upload' ? (datasets?.uploads.find((u) => u.id === cfg.upload)?.filename ?? 'upload') : cfg.dataset;
  const [uploadError, setUploadError] = useState<string | null>(null);
  const mismatch = ds && inputShape && formatShape(ds.sample_shape) !== formatShape(inputShape);
  const live = activeRunId !== null && !isTerminal(status) && status !== 'idle';
  const up = <K extends keyof Cfg>(k: K, v: Cfg[K]) => setCfg((c) => ({ ...c, [k]: v }));

  const charts = useMemo(() => buildCharts(smoothing, overlays), [smoothing, overlays]);

  return (
    <div className="training pad" data-testid="training">
      <h2>Train</h2>
      <div className="grid2">
        <label>
          Dataset
          <select
            value={cfg.dataset === 'upload' ? `upload:${cfg.upload}` : cfg.dataset}
            onChange={(e) => {
              const v = e.target.value;
              if (v.startsWith('upload:')) setCfg((c) => ({ ...c, dataset: 'upload', upload: v.slice('upload:'.length) }));
              else setCfg((c) => ({ ...c, dataset: v as Cfg['dataset'], upload: null }));
            }}
            data-testid="dataset"
          >
            {(datasets?.builtin ?? [{ name: 'digits' }]).map((d) => (
              <option key={d.name} value={d.name}>
                {d.name}
              </option>
            ))}
            {datasets?.uploads.map((u) => (
              <option key={u.id} value={`upload:${u.id}`}>
                {u.filename} (upload)
              </option>
            ))}
          </select>
          <input
            type="file"
            accept=".npz,.csv"
            title="Upload a .npz (arrays x, y) or a .csv"
            onChange={async (e) => {
              const f = e.target.files?.[0];
              e.target.value = '';
              if (!f) return;
              try {
                setUploadError(null);
                const info = await api.uploadDataset(f);
                await training.loadDatasets();
                setCfg((c) => ({ ...c, dataset: 'upload', upload: info.id }));
              } catch (err) {
                setUploadError(err instanceof Error ? err.message : String(err));
              }
            }}
          />
        </label>
        <div className="muted">
          {ds ? (
            <>
              samples {formatShape(ds.sample_shape)}, {ds.task}
              {ds.num_classes ? `, ${ds.num_classes} classes` : ''}
            </>
          ) : null}
        </div>
      </div>
      {uploadError && <div className="node-error">{uploadError}</div>}
      {mismatch && (
        <div className="warning" data-testid="dataset-mismatch">
          {dsLabel} samples are {formatShape(ds.sample_shape)} but the model's Input is {formatShape(inputShape)}: set the Input
          shape to {ds.sample_shape.join(', ')} (or add a reshaping layer), or pick another dataset.
        </div>
      )}
      <div className="grid2">
        <label>
          Loss
          <select value={cfg.loss} onChange={(e) => up('loss', e.target.value as Cfg['loss'])}>
            {LOSSES.map((x) => (
              <option key={x}>{x}</option>
            ))}
          </select>
        </label>
        <label>
          Optimizer
          <select value={cfg.optimizer} onChange={(e) => up('optimizer', e.target.value as Cfg['optimizer'])}>
            {OPTIMIZERS.map((x) => (
              <option key={x}>{x}</option>
            ))}
          </select>
        </label>
        <label>
          Learning rate
          <input type="number" step="any" min={0} value={cfg.lr} onChange={(e) => up('lr', e.target.valueAsNumber)} />
        </label>
        <label>
          Epochs
          <input type="number" min={1} value={cfg.epochs ?? 1} onChange={(e) => up('epochs', e.target.valueAsNumber)} data-testid="epochs" />
        </label>
        <label>
          Batch size
          <input type="number" min={1} value={cfg.batch_size} onChange={(e) => up('batch_size', e.target.valueAsNumber)} />
        </label>
        <label>
          Weight decay
          <input type="number" step="any" min={0} value={cfg.weight_decay} onChange={(e) => up('weight_decay', e.target.valueAsNumber)} />
        </label>
        <label>
          L1
          <input type="number" step="any" min={0} value={cfg.l1} onChange={(e) => up('l1', e.target.valueAsNumber)} />
        </label>
        <label>
          Schedule
          <select value={cfg.schedule} onChange={(e) => up('schedule', e.target.value as Cfg['schedule'])}>
            {SCHEDULES.map((x) => (
              <option key={x}>{x}</option>
            ))}
          </select>
        </label>
        <label>
          Init
          <select value={cfg.init} onChange={(e) => up('init', e.target.value as Cfg['init'])}>
            {INITS.map((x) => (
              <option key={x}>{x}</option>
            ))}
          </select>
        </label>
        <label>
          Device
          <input type="text" value={cfg.device} onChange={(e) => up('device', e.target.value)} placeholder="auto, cpu, cuda:0" />
        </label>
        <label>
          Precision
          <select value={cfg.precision} onChange={(e) => up('precision', e.target.value as Cfg['precision'])}>
            {PRECISIONS.map((x) => (
              <option key={x}>{x}</option>
            ))}
          </select>
        </label>
      </div>
      <div className="row">
        <button
          type="button"
          className="primary"
          data-testid="train-start"
          disabled={live || !valid}
          title={valid ? 'Saves the graph as a project version, then trains it' : 'Fix the graph first'}
          onClick={async () => {
            const saved = await projects.save();
            if (saved) await training.start(saved.projectId, saved.version, toRunConfig(cfg));
          }}
        >
          ▶ Train
        </button>
        <button type="button" disabled={!live || status === 'paused'} onClick={() => void training.control('pause')} data-testid="train-pause">
          Pause
        </button>
        <button type="button" disabled={status !== 'paused'} onClick={() => void training.control('resume')} data-testid="train-resume">
          Resume
        </button>
        <button type="button" className="danger" disabled={!live} onClick={() => void training.control('stop')} data-testid="train-stop">
          Stop
        </button>
        <button
          type="button"
          disabled={status !== 'stopped'}
          title="Go on from the stopped run's checkpoint, under the same run"
          onClick={() => void training.continueRun()}
          data-testid="train-continue"
        >
          Continue
        </button>
      </div>
      <RunStatusLine />
      {error && <div className="node-error">{error}</div>}
      <label className="row">
        Smoothing
        <input type="range" min={0} max={0.99} step={0.01} value={smoothing} onChange={(e) => setSmoothing(e.target.valueAsNumber)} data-testid="smoothing" />
        <span>{smoothing.toFixed(2)}</span>
      </label>
      {charts.map((c) => (
        <Chart key={c.testId} spec={c} version={overlays.join(',')} />
      ))}
      <RunHistory />
    </div>
  );
}

function RunStatusLine() {
  const status = useTraining((s) => s.status);
  const step = useTraining((s) => s.step);
  const total = useTraining((s) => s.totalSteps);
  const epoch = useTraining((s) => s.epoch);
  const sps = useTraining((s) => s.samplesPerS);
  const failure = useTraining((s) => s.failure);
  const warnings = useTraining((s) => s.warnings);
  const connected = useTraining((s) => s.connected);
  const runId = useTraining((s) => s.activeRunId);
  const detail = useTraining((s) => s.detail);
  if (!runId) return <div className="muted">No run yet.</div>;
  return (
    <div className="run-status" data-testid="run-status" data-status={status}>
      <b>{status}</b>
      {detail && <span data-testid="run-detail"> · {detail}</span>} · step <span data-testid="run-step">{step}</span>
      {total ? ` / ${total}` : ''} · epoch {epoch}
      {sps ? ` · ${Math.round(sps)} samples/s` : ''}
      {connected ? ' · live' : ''}
      {failure && (
        <div className="node-error">
          {failure.node ? `${failure.node}: ` : ''}
          {failure.reason}
          {failure.hint && <div className="suggestion">{failure.hint}</div>}
        </div>
      )}
      {warnings.slice(-3).map((w, i) => (
        <div key={i} className="warning">
          {w}
        </div>
      ))}
    </div>
  );
}

function RunHistory() {
  const runs = useTraining((s) => s.runs);
  const active = useTraining((s) => s.activeRunId);
  const overlays = useTraining((s) => s.overlays);
  return (
    <div className="run-history">
      <h3>Runs</h3>
      <table>
        <tbody>
          {runs.map((r) => (
            <tr key={r.id} className={r.id === active ? 'active' : ''}>
              <td>
                <input
                  type="checkbox"
                  title="Overlay this run's curves"
                  disabled={r.id === active}
                  checked={overlays.includes(r.id)}
                  onChange={() => void training.toggleOverlay(r.id)}
                />
              </td>
              <td>
                <button type="button" className="link" onClick={() => void training.watch(r.id)}>
                  {r.name || r.id.slice(0, 8)}
                </button>
              </td>
              <td>{r.status}</td>
              <td title="validation accuracy">{r.val_accuracy != null ? `${(r.val_accuracy * 100).toFixed(1)}%` : formatNumber(r.train_loss)}</td>
              <td>
                {r.has_checkpoint && (
                  <button
                    type="button"
                    className="small"
                    title="Download the checkpoint (safetensors)"
                    data-testid="checkpoint-download"
                    onClick={async () => {
                      try {
                        const { blob, filename } = await api.runs.checkpoint(r.id);
                        downloadBlob(blob, filename);
                      } catch (e) {
                        useTraining.setState({ error: e instanceof Error ? e.message : String(e) });
                      }
                    }}
                  >
                    weights
                  </button>
                )}
              </td>
              <td>
                {r.has_checkpoint && (
                  <button type="button" className="small" title="Fine-tune from this run's checkpoint" onClick={() => void training.finetune(r.id)}>
                    fine-tune
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function buildCharts(smoothing: number, overlays: string[]): ChartSpec[] {
  const overlaid = overlays.map((id) => overlaySeries.get(id)).filter((s): s is RunSeries => !!s);
  const withOverlays = (
    pick: (s: RunSeries) => { x: number[]; ys: (number | null)[][] },
    main: uPlot.Series[],
    each: (i: number, s: RunSeries) => uPlot.Series[],
  ) => {
    const series = [...main, ...overlaid.flatMap((s, i) => each(i, s))];
    const data = (s: RunSeries): uPlot.AlignedData => {
      const tables = [s, ...overlaid].map((r) => {
        const p = pick(r);
        return [p.x, ...p.ys] as uPlot.AlignedData;
      });
      if (tables.length === 1) return tables[0];
      return uPlotJoin(tables);
    };
    return { series, data };
  };
  const steps = withOverlays(
    (s) => ({ x: s.stepX, ys: [s.stepLoss, smooth(s.stepLoss, smoothing)] }),
    [
      { label: 'loss', stroke: 'rgba(47,111,223,0.25)', width: 1 },
      { label: 'smoothed', stroke: COLORS[0], width: 2 },
    ],
    (i, s) => [
      { label: `${s.runId.slice(0, 6)} raw`, show: false, stroke: COLORS[(i + 1) % COLORS.length] },
      { label: s.runId.slice(0, 6), stroke: COLORS[(i + 1) % COLORS.length], width: 1.5, dash: [4, 3] },
    ],
  );
  const epochs = withOverlays(
    (s) => ({ x: s.epochX, ys: [s.trainLoss, s.valLoss] }),
    [
      { label: 'train', stroke: COLORS[0], width: 2, points: { show: true } },
      { label: 'val', stroke: COLORS[1], width: 2, points: { show: true } },
    ],
    (i, s) => [
      { label: `${s.runId.slice(0, 6)} train`, stroke: COLORS[(i + 2) % COLORS.length], dash: [4, 3] },
      { label: `${s.runId.slice(0, 6)} val`, stroke: COLORS[(i + 2) % COLORS.length], dash: [1, 3] },
    ],
  );
  const acc = withOverlays(
    (s) => ({ x: s.epochX, ys: [s.trainAcc, s.valAcc] }),
    [
      { label: 'train acc', stroke: COLORS[0], width: 2, points: { show: true } },
      { label: 'val acc', stroke: COLORS[2], width: 2, points: { show: true } },
    ],
    (i, s) => [
      { label: `${s.runId.slice(0, 6)} train`, stroke: COLORS[(i + 3) % COLORS.length], dash: [4, 3] },
      { label: `${s.runId.slice(0, 6)} val`, stroke: COLORS[(i + 3) % COLORS.length], dash: [1, 3] },
    ],
  );
  return [
    { title: 'Loss per step', testId: 'chart-step-loss', which: 'steps', xLabel: 'step', series: steps.series, data: steps.data },
    { title: 'Loss per epoch', testId: 'chart-epoch-loss', which: 'epochs', xLabel: 'epoch', series: epochs.series, data: epochs.data },
    { title: 'Accuracy', testId: 'chart-accuracy', which: 'epochs', xLabel: 'epoch', series: acc.series, data: acc.data },
    {
      title: 'Learning rate',
      testId: 'chart-lr',
      which: 'steps',
      xLabel: 'step',
      series: [{ label: 'lr', stroke: COLORS[4], width: 1.5 }],
      data: (s) => [s.lrX, s.lr],
    },
  ];
}

// uPlot.join aligns tables with different x values (runs of different lengths).
const uPlotJoin = (tables: uPlot.AlignedData[]) => uPlot.join(tables);
