import { useEffect, useMemo, useState } from 'react';
import uPlot from 'uplot';
import { type ReportOptions, api, downloadBlob } from '../api/client';
import type { RunConfig } from '../api/types';
import { formatNumber, formatShape } from '../lib/format';
import { valueOf } from '../lib/runForm';
import { editor, useEditor } from '../state/editorStore';
import { projects } from '../state/projectStore';
import { type RunSeries, isTerminal, smooth } from '../state/runSeries';
import { overlaySeries, refreshRuns, training, useTraining } from '../state/trainingStore';
import { Chart, type ChartSpec } from './Chart';
import { RunForm } from './RunForm';
import { RunHeader, SelectedRunSettings } from './RunHeader';

const COLORS = ['#2f6fdf', '#d9822b', '#2fa35a', '#b5477f', '#7a5cd6', '#888'];

export function TrainingPanel() {
  const [smoothing, setSmoothing] = useState(0.6);
  const datasets = useTraining((s) => s.datasets);
  const form = useTraining((s) => s.form);
  const draft = useTraining((s) => s.draft);
  const invalid = useTraining((s) => s.invalid);
  const status = useTraining((s) => s.status);
  const activeRunId = useTraining((s) => s.activeRunId);
  const error = useTraining((s) => s.error);
  const overlays = useTraining((s) => s.overlays);
  const inputShape = useEditor((s) => s.report?.input_shape ?? null);
  const valid = useEditor((s) => s.report?.valid ?? false);

  useEffect(() => {
    void training.loadForm();
    void training.loadDatasets();
    void refreshRuns();
  }, []);
  const fields = useMemo(() => new Map((form ?? []).flatMap((g) => g.fields.map((f) => [f.path, f] as const))), [form]);
  const setting = (path: string) => {
    const f = fields.get(path);
    return f ? valueOf(draft, f) : undefined;
  };
  const batchSize = setting('data.batch_size') as number | undefined;
  const optimizer = setting('optimizer.name') as ReportOptions['optimizer'];
  // The status bar's memory estimate follows the batch size and optimizer chosen here.
  useEffect(() => {
    if (batchSize && batchSize >= 1 && optimizer) editor.setReportOptions({ batch_size: batchSize, optimizer });
  }, [batchSize, optimizer]);

  const dataset = setting('data.dataset') as string | undefined;
  const upload = (setting('data.upload') as { path?: string } | null | undefined)?.path;
  const ds = dataset === 'upload' ? datasets?.uploads.find((u) => u.id === upload) : datasets?.builtin.find((d) => d.name === dataset);
  const dsLabel = dataset === 'upload' ? (datasets?.uploads.find((u) => u.id === upload)?.filename ?? 'upload') : dataset;
  const mismatch = ds && inputShape && formatShape(ds.sample_shape) !== formatShape(inputShape);
  const live = activeRunId !== null && !isTerminal(status) && status !== 'idle';
  const problems = Object.entries(invalid);

  const charts = useMemo(() => buildCharts(smoothing, overlays), [smoothing, overlays]);

  return (
    <div className="training pad" data-testid="training">
      <h2>Train</h2>
      <RunHeader />
      <SelectedRunSettings />
      <h3>Next run</h3>
      {form ? (
        <RunForm groups={form} config={draft} onChange={training.setSetting} onValidity={training.setInvalid} datasets={datasets} id="run-form" />
      ) : (
        <p className="muted">Loading the run settings…</p>
      )}
      {mismatch && (
        <div className="warning" data-testid="dataset-mismatch">
          {dsLabel} samples are {formatShape(ds.sample_shape)} but the model's Input is {formatShape(inputShape)}: set the Input
          shape to {ds.sample_shape.join(', ')} (or add a reshaping layer), or pick another dataset.
        </div>
      )}
      {problems.length > 0 && (
        <div className="node-error" data-testid="settings-invalid">
          {problems.map(([path, why]) => (
            <div key={path}>
              {fields.get(path)?.label ?? path}: {why}
            </div>
          ))}
        </div>
      )}
      <div className="row">
        <button
          type="button"
          className="primary"
          data-testid="train-start"
          disabled={live || !valid || problems.length > 0 || !form}
          title={!valid ? 'Fix the graph first' : problems.length ? 'Fix the settings first' : 'Saves the graph as a project version, then trains it'}
          onClick={async () => {
            const saved = await projects.save();
            if (saved) await training.start(saved.projectId, saved.version, draft as RunConfig);
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
  const note = useTraining((s) => s.statusNote);
  if (!runId) return <div className="muted">No run yet.</div>;
  return (
    <div className="run-status" data-testid="run-status" data-status={status}>
      <b>{status}</b>
      {note && <span data-testid="run-note"> · {note}</span>} · step <span data-testid="run-step">{step}</span>
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
