import { formatBytes, formatCount, formatShape } from '../lib/format';
import { useEditor } from '../state/editorStore';

export function StatusBar() {
  const report = useEditor((s) => s.report);
  const pending = useEditor((s) => s.reportPending);
  const failed = useEditor((s) => s.reportFailed);
  const t = report?.totals;
  return (
    <footer className="status-bar" data-testid="status-bar">
      <span className={report?.valid ? 'ok' : 'bad'} data-testid="status-valid">
        {failed ? `backend: ${failed}` : !report ? 'no report yet' : report.valid ? '✓ valid' : `✕ ${report.errors.length} problem${report.errors.length === 1 ? '' : 's'}`}
      </span>
      <span>
        {formatShape(report?.input_shape)} → {formatShape(report?.output_shape)}
      </span>
      <span data-testid="total-params" title={t ? `${t.params} parameters` : ''}>
        params <b>{formatCount(t?.params)}</b>
      </span>
      <span data-testid="trainable-params" data-value={t?.trainable_params} title={t ? `${t.trainable_params} trainable` : ''}>
        trainable <b>{formatCount(t?.trainable_params)}</b>
      </span>
      <span data-testid="frozen-params" data-value={t?.frozen_params}>
        frozen <b>{formatCount(t?.frozen_params)}</b>
      </span>
      <span title="Multiply-accumulates per sample">
        MACs <b>{formatCount(t?.macs)}</b>
      </span>
      <span
        title={
          t?.memory
            ? `batch ${t.memory.batch_size}, ${t.memory.optimizer}: weights ${formatBytes(t.memory.weights_bytes)}, grads ${formatBytes(t.memory.gradients_bytes)}, optimizer ${formatBytes(t.memory.optimizer_bytes)}, activations ${formatBytes(t.memory.activations_bytes)}`
            : ''
        }
      >
        memory <b>{formatBytes(t?.memory?.total_bytes)}</b>
      </span>
      <span className="spacer" />
      {pending && <span className="muted" data-testid="report-pending">analysing…</span>}
    </footer>
  );
}
