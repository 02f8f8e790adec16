// A Block: a React Flow group node holding its layers; repeat, residual and collapse in its header.
import { Handle, type NodeProps, NodeResizer, Position } from '@xyflow/react';
import { memo } from 'react';
import type { GraphError } from '../api/types';
import { type BlockFlowNode, INNER_IN, INNER_OUT } from '../graph/kinds';
import { formatCount, formatShape } from '../lib/format';
import { editor, useEditor } from '../state/editorStore';
import { FreezeToggle, NodeErrors, UnconnectedHint } from './LayerNode';
import { NumericInput } from './NumericInput';

const NO_ERRORS: GraphError[] = [];

function BlockNodeView({ id, data, selected }: NodeProps<BlockFlowNode>) {
  const report = useEditor((s) => s.nodeReports[id]);
  const errors = useEditor((s) => s.nodeErrors[id]) ?? NO_ERRORS;
  const hints = useEditor((s) => s.nodeHints[id]) ?? NO_ERRORS;
  const inherited = useEditor((s) => Boolean(s.frozenInherited[id]));
  const childCount = useEditor((s) => s.nodes.reduce((k, n) => k + (n.parentId === id ? 1 : 0), 0));
  const lr = useEditor((s) => s.direction === 'LR');
  const repeat = Number(data.params.repeat ?? 1);
  const residual = Boolean(data.params.residual);
  const frozen = data.frozen || inherited;
  const cls = ['block-node', selected ? 'selected' : '', errors.length ? 'has-error' : '', hints.length ? 'unconnected' : '', frozen ? 'frozen' : '', data.collapsed ? 'collapsed' : '']
    .filter(Boolean)
    .join(' ');
  return (
    <div className={cls} data-testid={`node-${id}`} data-op="Block">
      {!data.collapsed && <NodeResizer isVisible={selected} minWidth={200} minHeight={100} />}
      <Handle type="target" position={lr ? Position.Left : Position.Top} />
      {/* Inside the frame: explicit entry (block → child) and exit (child → block) edges. */}
      {!data.collapsed && (
        <>
          {/* Facing inwards, so entry edges leave towards the first layer and exit edges arrive from the last. */}
          <Handle type="source" id={INNER_IN} className="inner" position={lr ? Position.Right : Position.Bottom} style={lr ? { left: 10, right: 'auto' } : { top: 52, bottom: 'auto' }} />
          <Handle type="target" id={INNER_OUT} className="inner" position={lr ? Position.Left : Position.Top} style={lr ? { right: 10, left: 'auto' } : { bottom: 10, top: 'auto' }} />
        </>
      )}
      <div className="block-head">
        <button
          type="button"
          className="nodrag collapse-toggle"
          title={data.collapsed ? 'Expand' : 'Collapse'}
          onClick={(e) => {
            e.stopPropagation();
            editor.setCollapsed(id, !data.collapsed);
          }}
        >
          {data.collapsed ? '▸' : '▾'}
        </button>
        <span className="node-op">Block</span>
        <span className="node-id" title={data.label ? `${data.label} (${id})` : id}>
          {data.label || id}
        </span>
        <UnconnectedHint hints={hints} />
        <label className="nodrag chip" title="Residual: out = body(x) + shortcut(x)">
          <input
            type="checkbox"
            checked={residual}
            data-testid={`residual-${id}`}
            onChange={(e) => editor.setParam(id, 'residual', e.target.checked || undefined)}
          />
          skip
        </label>
        <label className="nodrag repeat" title="Repeat: copies with their own weights">
          ×
          <NumericInput
            integer
            nullable={false}
            minimum={1}
            maximum={64}
            label="Repeat"
            compact
            testId={`repeat-${id}`}
            value={repeat}
            onChange={(v) => editor.setParam(id, 'repeat', v ?? undefined)}
          />
        </label>
        <FreezeToggle id={id} frozen={data.frozen} inherited={inherited} />
      </div>
      <div className="block-meta">
        <span className="shape-badge" data-testid="shape-badge" title={report?.formula?.join('\n')}>
          {report?.output_shape ? formatShape(report.output_shape) : '…'}
        </span>
        {report && report.params > 0 && <span className="param-count">{formatCount(report.params)} params</span>}
        {data.collapsed && <span className="muted">{childCount} layers</span>}
      </div>
      {residual && !data.collapsed && (
        <div className="skip-path" data-testid={`skip-path-${id}`} title="Skip connection: the block's input is added to its output">
          <span className="skip-add">+</span>
        </div>
      )}
      <NodeErrors id={id} errors={errors} />
      <Handle type="source" position={lr ? Position.Right : Position.Bottom} />
    </div>
  );
}

export const BlockNode = memo(BlockNodeView);
