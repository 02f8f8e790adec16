import { useReactFlow } from '@xyflow/react';
import { useMemo, useState } from 'react';
import type { OpName, OpSpec } from '../api/types';
import { editor, useEditor } from '../state/editorStore';
import { DRAG_MIME } from './Canvas';

export function Palette({ width }: { width: number }) {
  const catalog = useEditor((s) => s.catalog);
  const [query, setQuery] = useState('');
  const { screenToFlowPosition } = useReactFlow();
  // Double-click or Enter: add the layer in the middle of the visible canvas.
  const addAtCenter = (op: OpName) => {
    const box = document.querySelector('[data-testid="canvas"]')?.getBoundingClientRect();
    if (!box) return;
    const p = screenToFlowPosition({ x: box.left + box.width / 2, y: box.top + box.height / 2 });
    editor.addNode(op, { x: p.x - 95, y: p.y - 30 });
  };
  const groups = useMemo(() => {
    if (!catalog) return [];
    const q = query.trim().toLowerCase();
    const match = (o: OpSpec) =>
      !q || o.op.toLowerCase().includes(q) || o.category.toLowerCase().includes(q) || o.help.toLowerCase().includes(q);
    return catalog.categories
      .map((c) => ({ category: c, ops: catalog.ops.filter((o) => o.category === c && match(o)) }))
      .filter((g) => g.ops.length);
  }, [catalog, query]);

  return (
    <aside className="palette" style={{ width }} data-testid="palette">
      <input
        className="palette-search"
        type="search"
        placeholder="Search layers…"
        value={query}
        onChange={(e) => setQuery(e.target.value)}
        aria-label="Search layers"
      />
      {!catalog && <div className="muted pad">Loading the catalog…</div>}
      {groups.map((g) => (
        <section key={g.category}>
          <h3>{g.category}</h3>
          {g.ops.map((o) => (
            <div
              key={o.op}
              className="palette-item"
              draggable
              data-testid={`palette-${o.op}`}
              title={`${o.op}${o.torch_class ? ` (${o.torch_class})` : ''}: ${o.help}\nDrag onto the canvas, or double-click to add.`}
              tabIndex={0}
              onDoubleClick={() => addAtCenter(o.op)}
              onKeyDown={(e) => e.key === 'Enter' && addAtCenter(o.op)}
              onDragStart={(e) => {
                e.dataTransfer.setData(DRAG_MIME, o.op);
                e.dataTransfer.effectAllowed = 'copy';
              }}
            >
              <span className="op">{o.op}</span>
              {o.torch_class && <span className="torch">{o.torch_class}</span>}
            </div>
          ))}
        </section>
      ))}
    </aside>
  );
}
