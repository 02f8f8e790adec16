// The watched run's charts and the runs compared with it: log or linear y, EMA smoothing over a
// faint raw line, x by step, epoch or wall time, a legend with run names, and a table of what
// differs between the compared runs' configs and graph versions.
import { useEffect, useMemo, useState } from 'react';
import uPlot from 'uplot';
import { api } from '../api/client';
import type { RunDetail } from '../api/types';
import { X_LABEL, type XMode, stepAxis } from '../lib/chartData';
import { formatValue } from '../lib/paramFields';
import { configDiff } from '../lib/runForm';
import { type RunSeries, smoothedLoss } from '../state/runSeries';
import { overlaySeries, useTraining } from '../state/trainingStore';
import { Chart, type ChartSpec } from './Chart';
import './training.css';

// Distinct colours per run: the watched run first, then each compared run.
const RUN_COLORS = ['#2f6fdf', '#d9822b', '#2fa35a', '#b5477f', '#7a5cd6', '#8a6d3b', '#1b9aaa', '#c0392b'];
const faint = (hex: string) => `${hex}40`;

export function RunCharts() {
  const [smoothing, setSmoothing] = useState(0.6);
  const [log, setLog] = useState(false);
  const [xMode, setXMode] = useState<XMode>('step');
  const overlays = useTraining((s) => s.overlays);
  const runs = useTraining((s) => s.runs);
  const active = useTraining((s) => s.activeRunId);
  // The run list is fetched again at every epoch of any run (its step and loss change): keep the
  // names, and so the charts' specs, as long as the names are the same, or every refresh would
  // recompute and redraw every chart's 50,000-point columns.
  const namesKey = runs.map((r) => `${r.id}\u0000${r.name ?? ''}`).join('\u0001');
  // eslint-disable-next-line react-hooks/exhaustive-deps
  const names = useMemo(() => runNames(runs), [namesKey]);
  const charts = useMemo(() => buildCharts({ smoothing, overlays, log, xMode, names, active }), [smoothing, overlays, log, xMode, names, active]);
  return (
    <div className="run-charts">
      <div className="chart-controls">
        <label className="row">
          <input type="checkbox" checked={log} onChange={(e) => setLog(e.target.checked)} data-testid="log-scale" />
          Log scale
        </label>
        <label className="row">
          Smoothing
          <input type="range" min={0} max={0.99} step={0.01} value={smoothing} onChange={(e) => setSmoothing(e.target.valueAsNumber)} data-testid="smoothing" />
          <span>{smoothing.toFixed(2)}</span>
        </label>
        <label className="row">
          X axis
          <select value={xMode} onChange={(e) => setXMode(e.target.value as XMode)} data-testid="x-axis">
            <option value="step">step</option>
            <option value="epoch">epoch</option>
            <option value="time">wall time</option>
          </select>
        </label>
      </div>
      {charts.map((c) => (
        <Chart key={c.testId} spec={c} version={`${overlays.join(',')}|${log}|${xMode}|${active}|${names.size}`} />
      ))}
      {overlays.length > 0 && active && <CompareTable runIds={[active, ...overlays]} names={names} />}
    </div>
  );
}

/** What differs between the compared runs: every setting whose value is not the same, and the
 * graph version each trained. */
function CompareTable({ runIds, names }: { runIds: string[]; names: Map<string, string> }) {
  const form = useTraining((s) => s.form);
  const [details, setDetails] = useState<Record<string, RunDetail>>({});
  const key = runIds.join(',');
  useEffect(() => {
    let live = true;
    void Promise.all(runIds.map((id) => api.runs.get(id))).then((all) => {
      if (live) setDetails(Object.fromEntries(all.map((d) => [d.id, d])));
    });
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key]);
  const loaded = runIds.map((id) => details[id]).filter(Boolean);
  if (!form || loaded.length !== runIds.length) return <p className="muted">Loading the compared runs…</p>;
  const rows = configDiff(
    loaded.map((d) => d.config),
    form,
  );
  const versions = loaded.map((d) => d.version);
  return (
    <table className="compare" data-testid="compare-table">
      <thead>
        <tr>
          <th>setting</th>
          {loaded.map((d, i) => (
            <th key={d.id} style={{ color: RUN_COLORS[i % RUN_COLORS.length] }}>
              {names.get(d.id) ?? d.id.slice(0, 8)}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        <tr className={new Set(versions).size > 1 ? 'differs' : ''}>
          <td>Graph version</td>
          {versions.map((v, i) => (
            <td key={i}>v{v}</td>
          ))}
        </tr>
        {rows.map((r) => (
          <tr key={r.field.path} className="differs" data-path={r.field.path}>
            <td title={r.field.path}>{r.field.label}</td>
            {r.values.map((v, i) => (
              <td key={i}>{v === null || v === undefined ? '—' : typeof v === 'object' && !Array.isArray(v) ? JSON.stringify(v) : formatValue(v)}</td>
            ))}
          </tr>
        ))}
        {rows.length === 0 && (
          <tr>
            <td colSpan={loaded.length + 1} className="muted">
              Same settings.
            </td>
          </tr>
        )}
      </tbody>
    </table>
  );
}

/** Each run's name for legends and tables; a name two runs share gets the run's short id. */
function runNames(runs: { id: string; name?: string | null }[]): Map<string, string> {
  const count = new Map<string, number>();
  for (const r of runs) count.set(r.name || '', (count.get(r.name || '') ?? 0) + 1);
  return new Map(runs.map((r) => [r.id, r.name && count.get(r.name) === 1 ? r.name : `${r.name || 'run'} #${r.id.slice(0, 4)}`]));
}

interface Options {
  smoothing: number;
  overlays: string[];
  log: boolean;
  xMode: XMode;
  names: Map<string, string>;
  active: string | null;
}

function buildCharts({ smoothing, overlays, log, xMode, names, active }: Options): ChartSpec[] {
  const overlaid = overlays.map((id) => overlaySeries.get(id)).filter((s): s is RunSeries => !!s);
  const name = (id: string | null) => (id ? (names.get(id) ?? id.slice(0, 8)) : 'run');
  const runsOf = (s: RunSeries) => [s, ...overlaid];
  // One table per run, aligned on x (runs of different lengths) by uPlot.join.
  const joined = (s: RunSeries, pick: (r: RunSeries) => uPlot.AlignedData): uPlot.AlignedData => {
    const tables = runsOf(s).map(pick);
    return tables.length === 1 ? tables[0] : uPlot.join(tables);
  };
  const label = (i: number, what: string) => `${name(i === 0 ? active : overlaid[i - 1].runId)} ${what}`;
  const runIndexes = [0, ...overlaid.map((_, i) => i + 1)];
  const color = (i: number) => RUN_COLORS[i % RUN_COLORS.length];

  const stepLoss: ChartSpec = {
    title: 'Loss per step',
    testId: 'chart-step-loss',
    which: 'steps',
    xLabel: X_LABEL[xMode],
    log,
    // The raw line stays, faint, beneath the smoothed one.
    series: runIndexes.flatMap((i) => [
      { label: label(i, 'raw'), stroke: faint(color(i)), width: 1 },
      { label: label(i, smoothing > 0 ? 'smoothed' : 'loss'), stroke: color(i), width: 2, dash: i ? [6, 3] : undefined },
    ]),
    data: (s) => joined(s, (r) => [stepAxis(r, r.stepX, xMode), r.stepLoss, smoothedLoss(r, smoothing)]),
  };
  const perEpoch = (title: string, testId: string, train: (r: RunSeries) => (number | null)[], val: (r: RunSeries) => (number | null)[], what: [string, string], logY: boolean): ChartSpec => ({
    title,
    testId,
    which: 'epochs',
    xLabel: 'epoch',
    log: logY,
    // A run by its colour; train solid with filled points, val dashed with hollow ones. uPlot draws
    // the points while there is room for them, so after many epochs the val line's dashes show.
    series: runIndexes.flatMap((i) => [
      { label: label(i, what[0]), stroke: color(i), width: 2, points: { fill: color(i) } },
      { label: label(i, what[1]), stroke: color(i), width: 2, dash: [5, 4], points: { fill: 'transparent' } },
    ]),
    data: (s) => joined(s, (r) => [r.epochX, train(r), val(r)] as uPlot.AlignedData),
  });
  const lr: ChartSpec = {
    title: 'Learning rate',
    testId: 'chart-lr',
    which: 'steps',
    xLabel: X_LABEL[xMode],
    log,
    series: runIndexes.map((i) => ({ label: label(i, 'lr'), stroke: color(i), width: 1.5 })),
    data: (s) => joined(s, (r) => [stepAxis(r, r.lrX, xMode), r.lr]),
  };
  return [
    stepLoss,
    perEpoch('Loss per epoch', 'chart-epoch-loss', (r) => r.trainLoss, (r) => r.valLoss, ['train', 'val'], log),
    perEpoch('Accuracy', 'chart-accuracy', (r) => r.trainAcc, (r) => r.valAcc, ['train acc', 'val acc'], false),
    lr,
  ];
}
