import { useReactFlow } from '@xyflow/react';
import { useCallback, useEffect, useState } from 'react';
import type { GraphError } from '../api/types';
import { formatBytes, formatCount, formatShape } from '../lib/format';
import { editor, useEditor } from '../state/editorStore';

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** Selects a node and centres the canvas on it (a node inside a collapsed block: on the block). */
export function useFocusNode(): (id: string) => void {
  const { getInternalNode, setCenter, getZoom } = useReactFlow();
  return useCallback(
    (id: string) => {
      const nodes = useEditor.getState().nodes;
      let target = nodes.find((n) => n.id === id);
      while (target?.hidden && target.parentId) target = nodes.find((n) => n.id === target!.parentId);
      if (!target) return;
      editor.select(target.id);
      const internal = getInternalNode(target.id);
      if (!internal) return;
      const { x, y } = internal.internals.positionAbsolute;
      const w = internal.measured.width ?? 190;
      const h = internal.measured.height ?? 72;
      void setCenter(x + w / 2, y + h / 2, { zoom: Math.max(getZoom(), 0.9), duration: 250 });
    },
    [getInternalNode, setCenter, getZoom],
  );
}

/** Every problem in the report, real errors first; clicking one selects and centres its node. */
export function ProblemList({ errors, onPick }: { errors: GraphError[]; onPick?: () => void }) {
  const focus = useFocusNode();
  const sorted = [...errors].sort((a, b) => Number(a.kind === 'unconnected') - Number(b.kind === 'unconnected'));
  return (
    <ul className="problems" data-testid="problem-list">
      {sorted.map((e, i) => (
        <li key={i} className={e.kind === 'unconnected' ? 'hint' : 'error'} data-kind={e.kind ?? 'error'}>
          {e.node ? (
            <button
              type="button"
              className="problem-link"
              data-testid={`problem-${e.node}`}
              onClick={() => {
                focus(e.node!);
                onPick?.();
              }}
            >
              <span className="problem-node">{e.node}</span> {e.message.startsWith(`${e.node}: `) ? e.message.slice(e.node.length + 2) : e.message}
            </button>
          ) : (
            <span>{e.message}</span>
          )}
          {e.suggestion && <div className="suggestion">{e.suggestion}</div>}
        </li>
      ))}
    </ul>
  );
}

function ProblemsButton() {
  const report = useEditor((s) => s.report);
  const failed = useEditor((s) => s.reportFailed);
  const [open, setOpen] = useState(false);
  const errors = report?.errors ?? [];
  const real = errors.filter((e) => e.kind !== 'unconnected').length;
  const loose = errors.length - real;
  useEffect(() => {
    if (!errors.length) setOpen(false);
  }, [errors.length]);
  if (failed) return <span className="bad" data-testid="status-valid">backend: {failed}</span>;
  if (!report) return <span data-testid="status-valid">no report yet</span>;
  if (report.valid) return <span className="ok" data-testid="status-valid">✓ valid</span>;
  const label = [real ? plural(real, 'error') : '', loose ? `${loose} not connected yet` : ''].filter(Boolean).join(' · ');
  return (
    <span className="problems-anchor">
      <button
        type="button"
        className={`problems-button ${real ? 'bad' : 'hint'}`}
        data-testid="status-valid"
        aria-expanded={open}
        title="List the problems"
        onClick={() => setOpen((o) => !o)}
      >
        {real ? '✕' : '○'} {label}
      </button>
      {open && (
        <div className="problems-panel" data-testid="problems-panel">
          <div className="problems-title">
            Problems <button type="button" className="small" aria-label="Close the problems list" onClick={() => setOpen(false)}>✕</button>
          </div>
          <ProblemList errors={errors} />
        </div>
      )}
    </span>
  );
}

export function StatusBar() {
  const report = useEditor((s) => s.report);
  const pending = useEditor((s) => s.reportPending);
  const t = report?.totals;
  return (
    <footer className="status-bar" data-testid="status-bar">
      <ProblemsButton />
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
