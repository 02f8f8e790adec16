// A uPlot chart fed straight from the run's columns: it redraws when the training store says the
// columns changed (at most once per animation frame), without going through React state.
import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
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
        height: 150,
        title: spec.title,
        legend: { show: true, live: false },
        cursor: { drag: { x: true, y: false } },
        scales: { x: { time: false }, y: spec.log ? { distr: 3 } : {} },
        axes: [{ label: spec.xLabel, size: 30, labelSize: 14 }, { size: 48 }],
        series: [{}, ...spec.series],
      },
      spec.data(currentSeries()),
      el,
    );
    u.root.dataset.testid = spec.testId;
    plot.current = u;
    const draw = (data: uPlot.AlignedData) => {
      u.setData(data);
      // For tests and debugging: how many x values the chart holds, and the last one.
      const xs = data[0];
      u.root.dataset.points = String(xs.length);
      u.root.dataset.firstX = xs.length ? String(xs[0]) : '';
      u.root.dataset.lastX = xs.length ? String(xs[xs.length - 1]) : '';
    };
    draw(spec.data(currentSeries()));
    const off = onSeries((s, changes) => {
      if (changes[specRef.current.which]) draw(specRef.current.data(s));
    });
    const ro = new ResizeObserver(() => u.setSize({ width: Math.max(200, el.clientWidth), height: 150 }));
    ro.observe(el);
    return () => {
      off();
      ro.disconnect();
      u.destroy();
      plot.current = null;
    };
    // The series list is fixed per chart instance; `version` remounts it when overlays change.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [version]);

  // Settings such as smoothing change the data function: redraw with it.
  useEffect(() => {
    const u = plot.current;
    if (!u) return;
    const data = spec.data(currentSeries());
    u.setData(data);
    u.root.dataset.points = String(data[0].length);
  }, [spec]);

  return <div className="chart" ref={box} />;
}
