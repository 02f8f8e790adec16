// Search-and-insert at the cursor: a double-click on the empty canvas, or `/`, opens a box where
// typing filters the catalog; Enter (or a click) adds the layer where the box was opened.
import { useMemo, useState } from 'react';
import type { OpName, OpSpec } from '../api/types';
import { editor, useEditor } from '../state/editorStore';

export interface InsertPoint {
  /** Where the box shows, relative to the canvas element. */
  box: { x: number; y: number };
  /** Where the layer goes, in flow coordinates. */
  flow: { x: number; y: number };
}

const matches = (o: OpSpec, q: string) =>
  !q || o.op.toLowerCase().includes(q) || (o.torch_class ?? '').toLowerCase().includes(q) || o.category.toLowerCase().includes(q);

export function QuickInsert({ at, onClose }: { at: InsertPoint; onClose: () => void }) {
  const catalog = useEditor((s) => s.catalog);
  const [query, setQuery] = useState('');
  const [active, setActive] = useState(0);
  const found = useMemo(() => {
    const q = query.trim().toLowerCase();
    const ops = (catalog?.ops ?? []).filter((o) => matches(o, q));
    // Names that start with the query first.
    return ops.sort((a, b) => Number(!a.op.toLowerCase().startsWith(q)) - Number(!b.op.toLowerCase().startsWith(q))).slice(0, 8);
  }, [catalog, query]);
  const insert = (op: OpName) => {
    editor.addNode(op, { x: at.flow.x - 95, y: at.flow.y - 20 });
    onClose();
  };
  return (
    <div className="quick-insert nodrag" style={{ left: at.box.x, top: at.box.y }} data-testid="quick-insert" onMouseDown={(e) => e.stopPropagation()}>
      <input
        autoFocus
        type="search"
        aria-label="Insert a layer: type to search"
        placeholder="Insert a layer…"
        value={query}
        onChange={(e) => {
          setQuery(e.target.value);
          setActive(0);
        }}
        onBlur={onClose}
        onKeyDown={(e) => {
          if (e.key === 'Escape') onClose();
          else if (e.key === 'ArrowDown') setActive((i) => Math.min(found.length - 1, i + 1));
          else if (e.key === 'ArrowUp') setActive((i) => Math.max(0, i - 1));
          else if (e.key === 'Enter' && found[active]) insert(found[active].op);
          else return;
          e.preventDefault();
        }}
      />
      <ul role="listbox" aria-label="Matching layers">
        {found.map((o, i) => (
          <li
            key={o.op}
            role="option"
            aria-selected={i === active}
            className={i === active ? 'active' : ''}
            title={o.help}
            onMouseDown={(e) => {
              e.preventDefault(); // keep the input focused until the click lands
              insert(o.op);
            }}
          >
            <span className="op">{o.op}</span> {o.torch_class && <span className="torch">{o.torch_class}</span>}
          </li>
        ))}
        {found.length === 0 && <li className="muted">No layer matches “{query}”.</li>}
      </ul>
    </div>
  );
}
