import type { GraphError, InitScheme, JsonSchema } from '../api/types';
import { isBlock } from '../graph/kinds';
import { formatCount, formatShape } from '../lib/format';
import { editor, useEditor } from '../state/editorStore';
import { LayerInsight } from './LayerInsight';
import { ParamField } from './ParamField';
import { ProblemList } from './StatusBar';

const NO_ERRORS: GraphError[] = [];
// Checked against the generated InitSpec type: a scheme the backend drops fails the build.
const INIT_SCHEMES = [
  'default',
  'kaiming_normal',
  'kaiming_uniform',
  'xavier_normal',
  'xavier_uniform',
  'orthogonal',
  'normal',
  'zeros',
] as const satisfies readonly InitScheme[];

export function Inspector() {
  const selected = useEditor((s) => {
    const sel = s.nodes.filter((n) => n.selected);
    return sel.length === 1 ? sel[0] : sel.length;
  });
  if (typeof selected === 'number') {
    return selected > 1 ? <MultiSelection count={selected} /> : <GraphOverview />;
  }
  return <NodeInspector id={selected.id} />;
}

function MultiSelection({ count }: { count: number }) {
  return (
    <div className="inspector pad">
      <h2>{count} selected</h2>
      <p className="muted">Ctrl+G groups them into a block. Delete removes them. Ctrl+C / Ctrl+V copies.</p>
      <button type="button" onClick={editor.group}>
        Group into block
      </button>
    </div>
  );
}

function GraphOverview() {
  const report = useEditor((s) => s.report);
  const name = useEditor((s) => s.name);
  const errors = report?.errors ?? [];
  return (
    <div className="inspector pad" data-testid="inspector">
      <h2>Model</h2>
      <label className="field">
        <span className="field-name">Name</span>
        <input type="text" value={name} onChange={(e) => editor.rename(e.target.value)} />
      </label>
      {report && (
        <dl className="kv">
          <dt>Input</dt>
          <dd>{formatShape(report.input_shape)}</dd>
          <dt>Output</dt>
          <dd>{formatShape(report.output_shape)}</dd>
          <dt>Valid</dt>
          <dd>{report.valid ? 'yes' : 'no'}</dd>
        </dl>
      )}
      {errors.length > 0 && <h3>Problems</h3>}
      <ProblemList errors={errors} />
      {!errors.length && <p className="muted">Select a layer to edit it. Press ? for shortcuts.</p>}
    </div>
  );
}

function NodeInspector({ id }: { id: string }) {
  const node = useEditor((s) => s.nodes.find((n) => n.id === id));
  const spec = useEditor((s) => (node ? s.ops[node.data.op] : undefined));
  const report = useEditor((s) => s.nodeReports[id]);
  const errors = useEditor((s) => s.nodeErrors[id]) ?? NO_ERRORS;
  const inherited = useEditor((s) => Boolean(s.frozenInherited[id]));
  if (!node) return null;
  const props = (spec?.params.properties ?? {}) as Record<string, JsonSchema>;
  const fieldErrors = (k: string) => errors.filter((e) => e.field === k);
  const otherErrors = errors.filter((e) => !e.field || !(e.field in props));
  const init = typeof node.data.init === 'string' ? node.data.init : node.data.init?.scheme;
  return (
    <div className="inspector pad" data-testid="inspector">
      <h2>
        {node.data.op} <span className="muted">{id}</span>
      </h2>
      {spec && <p className="help">{spec.help}</p>}
      {report && (
        <dl className="kv" data-testid="inspector-report">
          <dt>In</dt>
          <dd>{report.input_shapes.map((s) => formatShape(s)).join(' + ') || '—'}</dd>
          <dt>Out</dt>
          <dd title={report.formula.join('\n')}>{formatShape(report.output_shape)}</dd>
          <dt>Params</dt>
          <dd>
            {formatCount(report.params)}
            {report.frozen_params > 0 && ` (${formatCount(report.frozen_params)} frozen)`}
          </dd>
          <dt>MACs</dt>
          <dd>{formatCount(report.macs)}</dd>
        </dl>
      )}
      <LayerInsight id={id} />
      {report && report.formula.length > 0 && (
        <pre className="formula" data-testid="formula">
          {report.formula.join('\n')}
        </pre>
      )}
      {otherErrors.map((e, i) => (
        <div key={i} className="node-error">
          <div className="msg">{e.message}</div>
          {e.suggestion && <div className="suggestion">{e.suggestion}</div>}
          {e.fix && (
            <button type="button" className="fix-button" onClick={() => editor.applyFix(e)}>
              Fix: {e.suggestion ?? 'apply'}
            </button>
          )}
        </div>
      ))}
      <label className="field">
        <span className="field-name">Label</span>
        <input type="text" value={node.data.label ?? ''} placeholder={id} onChange={(e) => editor.setLabel(id, e.target.value)} />
      </label>
      {node.data.op !== 'Input' && node.data.op !== 'Output' && (
        <>
          <label className="field inline">
            <input type="checkbox" checked={node.data.frozen} onChange={() => editor.toggleFrozen(id)} data-testid="inspector-freeze" />
            <span className="field-name">Frozen{inherited && !node.data.frozen ? ' (by its block)' : ''}</span>
          </label>
          <label className="field">
            <span className="field-name">Init override</span>
            <select value={init ?? ''} onChange={(e) => editor.setInit(id, (e.target.value || undefined) as InitScheme | undefined)}>
              <option value="">(model default)</option>
              {INIT_SCHEMES.map((s) => (
                <option key={s} value={s}>
                  {s}
                </option>
              ))}
            </select>
          </label>
        </>
      )}
      <h3>Parameters</h3>
      {Object.keys(props).length === 0 && <p className="muted">No parameters.</p>}
      {Object.entries(props).map(([key, schema]) => (
        <ParamField
          key={`${id}:${key}`}
          name={key}
          schema={schema}
          value={node.data.params[key]}
          inferred={spec?.inferred.includes(key) ?? false}
          errors={fieldErrors(key)}
          onChange={(v) => editor.setParam(id, key, v)}
        />
      ))}
      {isBlock(node) && (
        <div className="row">
          <button type="button" onClick={() => editor.setCollapsed(id, !node.data.collapsed)}>
            {node.data.collapsed ? 'Expand' : 'Collapse'}
          </button>
          <button type="button" onClick={() => editor.ungroup(id)}>
            Ungroup
          </button>
        </div>
      )}
      <div className="row">
        <button type="button" className="danger" onClick={() => editor.deleteNode(id)} title="Delete (Delete): a layer in a chain has its neighbours joined">
          Delete
        </button>
        <button type="button" className="danger" onClick={() => editor.deleteNode(id, false)} title="Delete without joining the neighbours (Ctrl+Delete)">
          Delete, leave a gap
        </button>
      </div>
    </div>
  );
}
