// Inside one layer during or after a run: the history of its gradient norm, weight norm,
// update/weight ratio and dead-unit fraction as sparklines, from the run's layer_stats events
// (every N steps, `layer_stats_every`), then what it made of one validation sample at the latest
// epoch's end (LayerOutputView). Only the open project's watched run counts.
import { LAYER_METRICS, type LayerTrace } from '../state/runSeries';
import { currentSeries, useLayerLive, useLayerSnapshot, useTraining } from '../state/trainingStore';
import { LayerOutputView } from './LayerOutputView';
import './training.css';

const TITLES: Record<(typeof LAYER_METRICS)[number], string> = {
  grad_norm: 'Gradient norm',
  weight_norm: 'Weight norm',
  update_ratio: 'Update / weight',
  dead_fraction: 'Dead fraction',
};

const W = 150;
const H = 28;

export function LayerInsight({ id }: { id: string }) {
  const { live, fromVersion } = useLayerLive(id);
  const seen = useLayerSnapshot(id);
  // Re-render when new statistics arrive (the history itself is read from the run's columns).
  const layers = useTraining((s) => s.layers);
  const step = layers ? currentSeries().layersStep : -1;
  const trace = live ? currentSeries().layerHistory[id] : undefined;
  if (!trace && !seen) return null;
  const shown = trace ? LAYER_METRICS.filter((k) => trace[k].some((v) => v !== null)) : [];
  return (
    <div className="layer-insight" data-testid="layer-insight">
      {trace && (
        <>
          <h3>
            During training <span className="muted">step {step}{fromVersion !== null ? ` · graph v${fromVersion}` : ''}</span>
          </h3>
          {shown.map((k) => (
            <Sparkline key={k} title={TITLES[k]} metric={k} trace={trace} />
          ))}
        </>
      )}
      {seen && <LayerOutputView snapshot={seen.snapshot} output={seen.output} />}
    </div>
  );
}

function Sparkline({ title, metric, trace }: { title: string; metric: (typeof LAYER_METRICS)[number]; trace: LayerTrace }) {
  const ys = trace[metric];
  const pts: [number, number][] = [];
  ys.forEach((v, i) => v !== null && Number.isFinite(v) && pts.push([trace.step[i], v]));
  const last = pts.length ? pts[pts.length - 1][1] : null;
  const [x0, x1] = [trace.step[0], trace.step[trace.step.length - 1]];
  let lo = Math.min(...pts.map((p) => p[1]));
  let hi = Math.max(...pts.map((p) => p[1]));
  if (hi === lo) [lo, hi] = [lo - 1e-12, hi + 1e-12];
  const path = pts
    .map(([x, y]) => `${x1 === x0 ? W : ((x - x0) / (x1 - x0)) * W},${H - 2 - ((y - lo) / (hi - lo)) * (H - 4)}`)
    .join(' ');
  const fmt = (v: number) => (metric === 'dead_fraction' ? `${(v * 100).toFixed(0)}%` : v.toExponential(2));
  return (
    <div className="sparkline" data-testid={`spark-${metric}`} data-points={pts.length} title={`${title}: ${pts.length} samples, ${fmt(lo)} … ${fmt(hi)}`}>
      <span className="spark-name">{title}</span>
      <svg width={W} height={H} role="img" aria-label={`${title} over training`}>
        <polyline points={path} fill="none" stroke="var(--accent)" strokeWidth={1.5} />
      </svg>
      <span className="spark-value">{last === null ? '—' : fmt(last)}</span>
    </div>
  );
}
