// The augmentation chain of the next run, shown as the steps in order and a preview: a few
// training images as loaded, then each through the random steps, drawn by the backend exactly as
// a run draws them (kornia on the batch). The steps themselves are edited in the run form.
import { useEffect, useRef, useState } from 'react';
import './augment.css';
import { ApiError, api } from '../api/client';
import type { AugmentPreview } from '../api/types';
import type { ConfigDraft } from '../lib/runForm';

interface Step {
  op: string;
}

export function AugmentPanel({ data }: { data: ConfigDraft | undefined }) {
  const steps = ((data?.augment as Step[] | undefined) ?? []).filter((s) => s && typeof s.op === 'string');
  const [preview, setPreview] = useState<AugmentPreview | null>(null);
  const [error, setError] = useState<string | null>(null);
  const key = JSON.stringify(data ?? {});

  useEffect(() => {
    if (!data || steps.length === 0) {
      setPreview(null);
      setError(null);
      return;
    }
    const ctl = new AbortController();
    // Settings change key by key while typed: ask once they rest.
    const timer = setTimeout(() => {
      api
        .augmentPreview(data, ctl.signal)
        .then((p) => {
          setPreview(p);
          setError(null);
        })
        .catch((e: unknown) => {
          if (ctl.signal.aborted) return;
          setPreview(null);
          setError(e instanceof ApiError ? e.message : String(e));
        });
    }, 250);
    return () => {
      clearTimeout(timer);
      ctl.abort();
    };
  }, [key]);

  if (steps.length === 0) return null;
  return (
    <section className="augment-panel" aria-label="Augmentation preview" data-testid="augment-panel">
      <h4>Augmentation (training batches only)</h4>
      <ol className="augment-chain" data-testid="augment-chain" aria-label="Augmentation steps in order">
        {steps.map((s, i) => (
          <li key={i}>{s.op}</li>
        ))}
      </ol>
      {error && (
        <div className="node-error" data-testid="augment-error">
          {error}
        </div>
      )}
      {preview && (
        <div className="augment-preview" data-testid="augment-preview">
          {preview.samples.map((s, i) => (
            <div className="augment-row" key={i} data-testid="augment-row">
              <figure>
                <PixelImage pixels={s.original} shape={preview.sample_shape} label={`image ${i + 1} as loaded`} />
                <figcaption>{s.label ?? 'as loaded'}</figcaption>
              </figure>
              <span className="muted" aria-hidden="true">
                →
              </span>
              {s.augmented.map((a, j) => (
                <PixelImage key={j} pixels={a} shape={preview.sample_shape} label={`image ${i + 1}, augmented draw ${j + 1}`} />
              ))}
            </div>
          ))}
        </div>
      )}
    </section>
  );
}

/** (C, H, W) pixels 0…255, C = 1 or 3, drawn on a canvas at 3× (pixelated). */
function PixelImage({ pixels, shape, label }: { pixels: number[]; shape: number[]; label: string }) {
  const ref = useRef<HTMLCanvasElement>(null);
  const [c, h, w] = shape;
  useEffect(() => {
    const ctx = ref.current?.getContext('2d');
    if (!ctx) return;
    const img = ctx.createImageData(w, h);
    const plane = h * w;
    for (let p = 0; p < plane; p++) {
      const r = pixels[p];
      img.data[4 * p] = r;
      img.data[4 * p + 1] = c === 3 ? pixels[plane + p] : r;
      img.data[4 * p + 2] = c === 3 ? pixels[2 * plane + p] : r;
      img.data[4 * p + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
  }, [pixels, c, h, w]);
  const scale = Math.max(1, Math.floor(84 / Math.max(h, w)));
  return <canvas ref={ref} width={w} height={h} role="img" aria-label={label} style={{ width: w * scale, height: h * scale }} />;
}
