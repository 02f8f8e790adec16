// What one layer made of the snapshot's sample (the worker's layer_snapshot event, once an epoch):
// its feature maps as a grid of greyscale tiles on a canvas, a histogram of its output, and one of
// its weights. Every figure is the backend's; the browser only draws the bytes and counts it sent.
import { useEffect, useRef, useState } from 'react';
import type { FeatureMaps, Histogram, LayerOutput, LayerSnapshot } from '../api/types';
import { formatNumber, formatShape } from '../lib/format';

const fmt = (v: number) => formatNumber(v, 3);

/** Tiles per row in the feature-map grid, and the gap between tiles in source pixels. */
const COLS = 4;
const GAP = 1;
/** How wide a tile is drawn on the page, whatever its size in pixels. */
const TILE_PX = 58;

export function LayerOutputView({ snapshot, output }: { snapshot: LayerSnapshot; output: LayerOutput }) {
  const sample = `${snapshot.split === 'val' ? 'validation' : 'training'} sample ${snapshot.sample}`;
  return (
    <div className="layer-output" data-testid="layer-output">
      <h3>
        Output on {sample} <span className="muted">· epoch {snapshot.epoch}, step {snapshot.step}</span>
      </h3>
      <div className="muted layer-output-shape">per sample {formatShape(output.shape)}</div>
      {output.maps && <FeatureGrid maps={output.maps} node={output.node} />}
      <HistogramBars title="Output values" testId="output-histogram" hist={output.output} node={output.node} />
      {output.weights && <HistogramBars title="Weights" testId="weight-histogram" hist={output.weights} node={output.node} />}
    </div>
  );
}

/** Decodes the base64 tile bytes: channel by channel, row by row. */
export function tileBytes(maps: FeatureMaps): Uint8Array {
  const raw = atob(maps.pixels);
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
  return out;
}

/** Where tile `c`'s pixel (y, x) sits on the grid canvas. */
export function gridPosition(maps: FeatureMaps, c: number, y: number, x: number): [number, number] {
  return [(c % COLS) * (maps.width + GAP) + x, Math.floor(c / COLS) * (maps.height + GAP) + y];
}

function FeatureGrid({ maps, node }: { maps: FeatureMaps; node: string }) {
  const ref = useRef<HTMLCanvasElement>(null);
  const [hover, setHover] = useState<number | null>(null);
  const n = maps.lo.length;
  const cols = Math.min(COLS, n);
  const rows = Math.ceil(n / COLS);
  const width = cols * (maps.width + GAP) - GAP;
  const height = rows * (maps.height + GAP) - GAP;

  useEffect(() => {
    const ctx = ref.current?.getContext('2d');
    if (!ctx) return;
    const bytes = tileBytes(maps);
    const img = ctx.createImageData(width, height); // transparent between tiles
    const plane = maps.height * maps.width;
    for (let c = 0; c < n; c++) {
      for (let y = 0; y < maps.height; y++) {
        for (let x = 0; x < maps.width; x++) {
          const [px, py] = gridPosition(maps, c, y, x);
          const v = bytes[c * plane + y * maps.width + x];
          const at = (py * width + px) * 4;
          img.data[at] = img.data[at + 1] = img.data[at + 2] = v;
          img.data[at + 3] = 255;
        }
      }
    }
    ctx.putImageData(img, 0, 0);
  }, [maps, n, width, height]);

  const onMove = (e: React.MouseEvent<HTMLCanvasElement>) => {
    const box = e.currentTarget.getBoundingClientRect();
    const px = ((e.clientX - box.left) / box.width) * width;
    const py = ((e.clientY - box.top) / box.height) * height;
    const c = Math.floor(py / (maps.height + GAP)) * COLS + Math.floor(px / (maps.width + GAP));
    setHover(c >= 0 && c < n ? c : null);
  };
  const [h, w] = maps.source_size;
  const scaled = h !== maps.height || w !== maps.width ? `, averaged down from ${h}×${w}` : '';
  const label = `Feature maps of ${node}: ${n} of ${maps.channels} channels, ${maps.height}×${maps.width}${scaled}`;
  return (
    <figure className="feature-maps">
      <canvas
        ref={ref}
        width={width}
        height={height}
        data-testid="feature-maps"
        data-tiles={n}
        role="img"
        aria-label={label}
        style={{ width: `${cols * TILE_PX}px`, aspectRatio: `${width} / ${height}` }}
        onMouseMove={onMove}
        onMouseLeave={() => setHover(null)}
      />
      <figcaption className="muted" data-testid="feature-maps-caption">
        {hover !== null
          ? `channel ${hover}: black ${fmt(maps.lo[hover])}, white ${fmt(maps.hi[hover])}`
          : `${n} of ${maps.channels} channels · ${maps.height}×${maps.width}${scaled} · each scaled to its own range`}
      </figcaption>
    </figure>
  );
}

const BAR_W = 240;
const BAR_H = 44;

function HistogramBars({ title, testId, hist, node }: { title: string; testId: string; hist: Histogram; node: string }) {
  const most = Math.max(1, ...hist.counts);
  const bw = BAR_W / hist.counts.length;
  const total = hist.counts.reduce((a, b) => a + b, 0);
  const label = `${title} of ${node}: ${total} values in ${hist.counts.length} bins from ${fmt(hist.lo)} to ${fmt(hist.hi)}`;
  return (
    <figure className="histogram" data-testid={testId} data-counts={hist.counts.join(',')}>
      <figcaption>
        {title}
        {hist.nonfinite > 0 && <span className="error"> · {hist.nonfinite} NaN/inf</span>}
      </figcaption>
      <svg width={BAR_W} height={BAR_H} viewBox={`0 0 ${BAR_W} ${BAR_H}`} role="img" aria-label={label}>
        {hist.counts.map((c, i) => {
          const bh = c ? Math.max(1, (c / most) * BAR_H) : 0;
          const lo = hist.lo + ((hist.hi - hist.lo) * i) / hist.counts.length;
          const hi = hist.lo + ((hist.hi - hist.lo) * (i + 1)) / hist.counts.length;
          return (
            <rect key={i} x={i * bw} y={BAR_H - bh} width={Math.max(bw - 1, 1)} height={bh} fill="var(--accent)">
              <title>{`${fmt(lo)} … ${fmt(hi)}: ${c}`}</title>
            </rect>
          );
        })}
      </svg>
      <div className="histogram-range muted">
        <span>{fmt(hist.lo)}</span>
        <span>{fmt(hist.hi)}</span>
      </div>
    </figure>
  );
}
