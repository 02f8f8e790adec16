// A uPlot chart fed straight from the run's columns: it redraws when the training store says the
// columns changed (at most once per animation frame), without going through React state. Hovering
// reads every visible series' exact value in the legend; the visible series export as CSV and the
// chart as PNG.
import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { downloadBlob } from '../api/client';
import { toCsv } from '../lib/chartData';
import type { Changes, RunSeries } from '../state/runSeries';
import { currentSeries, onSeries } from '../state/trainingStore';

export interface ChartSpec {
  title: string;
  testId: string;
  which: keyof Changes;
  xLabel: string;
  series: uPlot.Series[];
  data: (s: RunSeries) => uPlot.AlignedData;
  log?: boolean;
}

const HEIGHT = 160;
const exact = (_u: uPlot, v: number | null) => (v == null || Number.isNaN(v) ? '—' : Math.abs(v) >= 1e-3 && Math.abs(v) < 1e5 ? String(+v.toPrecision(6)) : v.toExponential(4));

export function Chart({ spec, version }: { spec: ChartSpec; version?: unknown }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const specRef = useRef(spec);
  specRef.current = spec;

  useEffect(() => {
    const el = box.current!;
    const width = Math.max(200, el.clientWidth);
    const u = new uPlot(
      {
        width,
        height: HEIGHT,
        title: spec.title,
        // a solid line's marker is filled, a dashed line's hollow: val beside train, an overlaid run
        // beside the active one
        legend: {
          show: true,
          live: true,
          markers: { fill: (_u: uPlot, i: number) => (i > 0 && !spec.series[i - 1].dash ? String(spec.series[i - 1].stroke ?? '') : 'transparent') },
        },
        cursor: { drag: { x: true, y: false } },
        scales: { x: { time: false }, y: spec.log ? { distr: 3 } : {} },
        axes: [{ label: spec.xLabel, size: 30, labelSize: 14 }, { size: 52 }],
        series: [{ label: spec.xLabel, value: exact }, ...spec.series.map((s) => ({ value: exact, ...s }))],
      },
      spec.data(currentSeries()),
      el,
    );
    u.root.dataset.testid = spec.testId;
    u.root.dataset.log = spec.log ? 'true' : 'false';
    plot.current = u;
    draw(u, spec.data(currentSeries()));
    const off = onSeries((s, changes) => {
      if (changes[specRef.current.which]) draw(u, specRef.current.data(s));
    });
    const ro = new ResizeObserver(() => u.setSize({ width: Math.max(200, el.clientWidth), height: HEIGHT }));
    ro.observe(el);
    return () => {
      off();
      ro.disconnect();
      u.destroy();
      plot.current = null;
    };
    // The series list is fixed per chart instance; `version` remounts it when it changes.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [version]);

  // Settings such as smoothing change the data function: redraw with it.
  useEffect(() => {
    const u = plot.current;
    if (u) draw(u, spec.data(currentSeries()));
  }, [spec]);

  const name = spec.title.toLowerCase().replace(/[^a-z0-9]+/g, '_');
  return (
    <div className="chart-box">
      <div className="chart-tools">
        <button type="button" className="small" aria-label={`Download ${spec.title} as CSV`} data-testid={`${spec.testId}-csv`} onClick={() => plot.current && downloadBlob(csvOf(plot.current, spec.xLabel), `${name}.csv`)}>
          CSV
        </button>
        <button type="button" className="small" aria-label={`Download ${spec.title} as PNG`} data-testid={`${spec.testId}-png`} onClick={() => plot.current && void pngOf(plot.current, spec.title).then((b) => downloadBlob(b, `${name}.png`))}>
          PNG
        </button>
      </div>
      <div className="chart" ref={box} />
    </div>
  );
}

function draw(u: uPlot, data: uPlot.AlignedData) {
  u.setData(data);
  // For tests and benchmarks: how many x values the chart holds, the first and last, and how
  // many times it was given data.
  const xs = data[0];
  u.root.dataset.points = String(xs.length);
  u.root.dataset.firstX = xs.length ? String(xs[0]) : '';
  u.root.dataset.lastX = xs.length ? String(xs[xs.length - 1]) : '';
  u.root.dataset.draws = String(Number(u.root.dataset.draws ?? 0) + 1);
}

function csvOf(u: uPlot, xLabel: string): Blob {
  const series = u.series.slice(1);
  const text = toCsv(
    xLabel,
    series.map((s) => String(s.label ?? '')),
    u.data as ArrayLike<number | null | undefined>[],
    series.map((s) => s.show !== false),
  );
  return new Blob([text], { type: 'text/csv' });
}

/** The plot's canvas with its title above and the shown series' names below. */
function pngOf(u: uPlot, title: string): Promise<Blob> {
  const plotCanvas = u.ctx.canvas;
  const ratio = plotCanvas.width / u.width;
  const shown = u.series.slice(1).filter((s) => s.show !== false);
  const out = document.createElement('canvas');
  out.width = plotCanvas.width;
  out.height = plotCanvas.height + 48 * ratio;
  const ctx = out.getContext('2d')!;
  const css = getComputedStyle(u.root);
  ctx.fillStyle = css.getPropertyValue('--panel').trim() || '#fff';
  ctx.fillRect(0, 0, out.width, out.height);
  ctx.fillStyle = css.getPropertyValue('--text').trim() || '#000';
  ctx.font = `${13 * ratio}px sans-serif`;
  ctx.fillText(title, 8 * ratio, 16 * ratio);
  ctx.drawImage(plotCanvas, 0, 24 * ratio);
  let x = 8 * ratio;
  const y = plotCanvas.height + 40 * ratio;
  ctx.font = `${11 * ratio}px sans-serif`;
  for (const s of shown) {
    const stroke = typeof s.stroke === 'function' ? '#888' : String(s.stroke ?? '#888');
    ctx.fillStyle = stroke;
    ctx.fillRect(x, y - 8 * ratio, 12 * ratio, 3 * ratio);
    ctx.fillStyle = css.getPropertyValue('--text').trim() || '#000';
    const label = String(s.label ?? '');
    ctx.fillText(label, x + 16 * ratio, y);
    x += (24 + ctx.measureText(label).width / ratio) * ratio;
  }
  return new Promise((resolve, reject) => out.toBlob((b) => (b ? resolve(b) : reject(new Error('PNG export failed'))), 'image/png'));
}
