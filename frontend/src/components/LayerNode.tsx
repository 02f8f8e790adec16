// The one node component for every layer kind: what it shows comes from the catalog (handles,
// help) and the backend's report (shape, formula, params, errors); live training stats tint it.
import { Handle, type NodeProps, Position, useStore } from '@xyflow/react';
import { memo } from 'react';
import type { GraphError } from '../api/types';
import type { LayerFlowNode } from '../graph/kinds';
import { formatCount, formatShape } from '../lib/format';
import { editor, useEditor } from '../state/editorStore';
import { useLayerLive } from '../state/trainingStore';
import type { LayerLive } from '../state/runSeries';

const NO_ERRORS: GraphError[] = [];

export function FreezeToggle({ id, frozen, inherited }: { id: string; frozen: boolean; inherited: boolean }) {
  return (
    <button
      type="button"
      className={`nodrag freeze-toggle${frozen || inherited ? ' on' : ''}`}
      title={inherited && !frozen ? 'Frozen by its block' : frozen ? 'Frozen: click to train this layer' : 'Freeze (requires_grad=False)'}
      aria-pressed={frozen}
      data-testid={`freeze-${id}`}
      onClick={(e) => {
        e.stopPropagation();
        editor.toggleFrozen(id);
      }}
    >
      ❄
    </button>
  );
}

/** Not wired up yet: a small dot whose tooltip says what is missing (not an error while building). */
export function UnconnectedHint({ hints }: { hints: GraphError[] }) {
  if (!hints.length) return null;
  const text = hints.map((h) => h.message + (h.suggestion ? ` (${h.suggestion})` : '')).join('\n');
  return <span className="unconnected-dot" data-testid="unconnected-hint" title={text} aria-label={text} />;
}

const CALLOUT_WIDTH = 250;

/** True when a callout on the node's right would run past the canvas' right edge (under the side panel). */
function useCalloutOnLeft(id: string): boolean {
  return useStore((s) => {
    const n = s.nodeLookup.get(id);
    if (!n) return false;
    const [tx, , k] = s.transform;
    const right = (n.internals.positionAbsolute.x + (n.measured.width ?? 190)) * k + tx;
    return right + CALLOUT_WIDTH > s.width;
  });
}

export function NodeErrors({ id, errors }: { id: string; errors: GraphError[] }) {
  if (!errors.length) return null;
  return <ErrorCallout id={id} errors={errors} />;
}

// Only nodes with errors watch the viewport (a boolean selector: re-renders when the side flips).
function ErrorCallout({ id, errors }: { id: string; errors: GraphError[] }) {
  const left = useCalloutOnLeft(id);
  return (
    <div className={`node-errors${left ? ' on-left' : ''}`} data-testid="error-callout">
      {errors.map((e, i) => (
        <div key={i} className="node-error" data-testid="node-error">
          <div className="msg">{e.message}</div>
          {e.suggestion && <div className="suggestion">{e.suggestion}</div>}
          {e.fix && (
            <button
              type="button"
              className="nodrag fix-button"
              data-testid="fix-button"
              onClick={(ev) => {
                ev.stopPropagation();
                editor.applyFix(e);
              }}
            >
              Fix: {e.suggestion ?? 'apply'}
            </button>
          )}
        </div>
      ))}
    </div>
  );
}

/** Gradient-norm tint on a log scale: pale (tiny) → amber (large). */
export function liveStyle(live: LayerLive | undefined): React.CSSProperties | undefined {
  if (!live || live.grad_norm == null || !(live.grad_norm > 0)) return undefined;
  const t = Math.max(0, Math.min(1, (Math.log10(live.grad_norm) + 4) / 5)); // 1e-4 .. 10
  return { boxShadow: `0 0 0 3px hsla(${200 - t * 170}, 85%, 55%, ${0.35 + 0.5 * t})` };
}

export function LiveBadges({ live, fromVersion = null }: { live: LayerLive | undefined; fromVersion?: number | null }) {
  if (!live) return null;
  return (
    <div className="live-badges">
      {fromVersion !== null && (
        <span className="stale" data-testid="stats-version" title={`These statistics are from the run of graph version ${fromVersion}; the canvas has changed since`}>
          from v{fromVersion}
        </span>
      )}
      {live.grad_norm != null && <span title="Gradient norm (latest layer_stats)">∇ {live.grad_norm.toExponential(1)}</span>}
      {live.dead_fraction != null && (
        <span className={live.dead_fraction > 0.5 ? 'dead high' : 'dead'} title="ReLU units dead for the whole batch">
          dead {(live.dead_fraction * 100).toFixed(0)}%
        </span>
      )}
    </div>
  );
}

function LayerNodeView({ id, data, selected }: NodeProps<LayerFlowNode>) {
  const spec = useEditor((s) => s.ops[data.op]);
  const report = useEditor((s) => s.nodeReports[id]);
  const errors = useEditor((s) => s.nodeErrors[id]) ?? NO_ERRORS;
  const hints = useEditor((s) => s.nodeHints[id]) ?? NO_ERRORS;
  const inherited = useEditor((s) => Boolean(s.frozenInherited[id]));
  const { live, fromVersion } = useLayerLive(id);
  const lr = useEditor((s) => s.direction === 'LR');
  // A report that does not mention the node: the graph failed validation before shapes ran.
  // (Nodes with a report always read true here, so edits do not re-render every node.)
  const analysed = useEditor((s) => (s.nodeReports[id] ? true : s.report !== null && !s.reportPending));
  const frozen = data.frozen || inherited || Boolean(report?.frozen);
  const hasInput = (spec?.inputs.max ?? 1) > 0;
  const hasOutput = data.op !== 'Output';
  const cls = ['layer-node', `op-${data.op}`, selected ? 'selected' : '', errors.length ? 'has-error' : '', hints.length ? 'unconnected' : '', frozen ? 'frozen' : '', report?.status === 'skipped' ? 'skipped' : '']
    .filter(Boolean)
    .join(' ');
  const formula = report?.formula?.join('\n');
  return (
    <div className={cls} data-testid={`node-${id}`} data-op={data.op} style={liveStyle(live)} title={spec?.help}>
      {hasInput && <Handle type="target" position={lr ? Position.Left : Position.Top} />}
      <div className="node-head">
        <span className="node-op" title={data.op}>
          {data.op}
        </span>
        <span className="node-id" title={data.label ? `${data.label} (${id})` : id}>
          {data.label || id}
        </span>
        <UnconnectedHint hints={hints} />
        {data.op !== 'Input' && data.op !== 'Output' && <FreezeToggle id={id} frozen={data.frozen} inherited={inherited} />}
      </div>
      <div className="node-body">
        <span className="shape-badge" data-testid="shape-badge" title={formula || 'output shape (per sample)'}>
          {report?.output_shape ? formatShape(report.output_shape) : report?.status === 'error' ? '✕' : analysed ? '—' : '…'}
        </span>
        {report && report.params > 0 && (
          <span className="param-count" data-testid="param-count" title={`${report.trainable_params} trainable, ${report.frozen_params} frozen`}>
            {formatCount(report.params)} params
          </span>
        )}
      </div>
      <LiveBadges live={live} fromVersion={fromVersion} />
      <NodeErrors id={id} errors={errors} />
      {hasOutput && <Handle type="source" position={lr ? Position.Right : Position.Bottom} />}
    </div>
  );
}

export const LayerNode = memo(LayerNodeView);
