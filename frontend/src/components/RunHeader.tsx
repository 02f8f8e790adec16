// The watched run at a glance: where it trains (device, threads, precision), on what (dataset and
// its split sizes), how fast, and which graph version; and its exact settings, read-only.
import { useState } from 'react';
import { formatShape } from '../lib/format';
import { useProject } from '../state/projectStore';
import { training, useTraining } from '../state/trainingStore';
import { RunForm } from './RunForm';
import './training.css';

export function deviceText(h: { device: string; deviceName: string | null; threads: number | null }): string {
  if (h.device.startsWith('cuda')) return h.deviceName ? `${h.device} ${h.deviceName}` : h.device;
  return h.threads ? `${h.device}, ${h.threads} thread${h.threads === 1 ? '' : 's'}` : h.device;
}

export function RunHeader() {
  const detail = useTraining((s) => s.detail);
  const header = useTraining((s) => s.header);
  const sps = useTraining((s) => s.samplesPerS);
  const version = useProject((s) => s.version);
  const dirty = useProject((s) => s.dirty);
  if (!detail) return null;
  const changed = dirty || version !== detail.version;
  const hw = header?.hardware;
  const ds = header?.dataset;
  return (
    <dl className="run-header" data-testid="run-header">
      <dt>Run</dt>
      <dd>
        {detail.name ?? detail.id.slice(0, 8)}{' '}
        <span className="muted" data-testid="run-version" title={changed ? 'The canvas has changed since this run: its layer statistics are from this version' : undefined}>
          graph v{detail.version}
          {changed ? ' (canvas changed since)' : ''}
        </span>
      </dd>
      <dt>Device</dt>
      <dd data-testid="run-device">{hw ? deviceText(hw) : '…'}</dd>
      <dt>Precision</dt>
      <dd data-testid="run-precision">{hw?.precision ?? '…'}</dd>
      <dt>Dataset</dt>
      <dd data-testid="run-dataset">
        {ds ? (
          <>
            {ds.name} {formatShape(ds.sample_shape)} · {ds.n_train.toLocaleString()} train / {ds.n_val.toLocaleString()} val
          </>
        ) : (
          '…'
        )}
      </dd>
      <dt>Speed</dt>
      <dd data-testid="run-speed">{sps ? `${Math.round(sps).toLocaleString()} samples/s` : '—'}</dd>
    </dl>
  );
}

/** The watched run's configuration exactly as stored, and a way to start from it. */
export function SelectedRunSettings() {
  const detail = useTraining((s) => s.detail);
  const form = useTraining((s) => s.form);
  const datasets = useTraining((s) => s.datasets);
  const [open, setOpen] = useState(false);
  if (!detail || !form) return null;
  return (
    <div className="run-settings" data-testid="run-settings">
      <details open={open} onToggle={(e) => setOpen((e.target as HTMLDetailsElement).open)}>
        <summary>Settings of this run (read-only)</summary>
        {open && <RunForm groups={form} config={detail.config} datasets={datasets} id="run-settings-form" />}
      </details>
      <button type="button" data-testid="train-again" onClick={() => training.copySettings(detail.config)}>
        Train again with these settings
      </button>
    </div>
  );
}
