// The template gallery: a card per examples/*.json with its description, the backend's report
// (input → output shape, parameters) and a small top-to-bottom preview of the graph.
import { useEffect, useMemo, useState } from 'react';
import { api } from '../api/client';
import type { GraphDoc, Report } from '../api/types';
import { graphToFlow, layoutDoc } from '../graph/convert';
import { isBlock } from '../graph/kinds';
import { type Template, templateTitle, templates } from '../graph/templates';
import { formatCount, formatShape } from '../lib/format';
import { projects, useProject } from '../state/projectStore';

function Preview({ doc }: { doc: GraphDoc }) {
  const { boxes, lines, view } = useMemo(() => {
    const flow = graphToFlow(doc);
    const top = flow.nodes.filter((n) => !n.parentId);
    const at = new Map(top.map((n) => [n.id, n] as const));
    const size = (n: (typeof top)[number]) => ({ w: isBlock(n) ? (n.width ?? 220) : 190, h: isBlock(n) ? (n.height ?? 84) : 44 });
    let maxX = 1;
    let maxY = 1;
    const boxes = top.map((n) => {
      const { w, h } = size(n);
      maxX = Math.max(maxX, n.position.x + w);
      maxY = Math.max(maxY, n.position.y + h);
      return { id: n.id, x: n.position.x, y: n.position.y, w, h, block: isBlock(n) };
    });
    const lines = flow.edges
      .filter((e) => at.has(e.source) && at.has(e.target))
      .map((e) => {
        const a = at.get(e.source)!;
        const b = at.get(e.target)!;
        return { id: e.id, x1: a.position.x + size(a).w / 2, y1: a.position.y + size(a).h, x2: b.position.x + size(b).w / 2, y2: b.position.y };
      });
    return { boxes, lines, view: `-10 -10 ${maxX + 20} ${maxY + 20}` };
  }, [doc]);
  return (
    <svg className="template-preview" viewBox={view} preserveAspectRatio="xMidYMin meet" aria-hidden="true">
      {lines.map((l) => (
        <line key={l.id} x1={l.x1} y1={l.y1} x2={l.x2} y2={l.y2} />
      ))}
      {boxes.map((b) => (
        <rect key={b.id} x={b.x} y={b.y} width={b.w} height={b.h} rx={10} className={b.block ? 'block' : ''} />
      ))}
    </svg>
  );
}

function Card({ t, doc, chosen, onChoose }: { t: Template; doc: GraphDoc; chosen: boolean; onChoose: () => void }) {
  const [report, setReport] = useState<Report | null>(null);
  const [failed, setFailed] = useState<string | null>(null);
  useEffect(() => {
    const ctl = new AbortController();
    api.report(t.doc, ctl.signal).then(setReport, (e) => !ctl.signal.aborted && setFailed(e instanceof Error ? e.message : String(e)));
    return () => ctl.abort();
  }, [t.doc]);
  return (
    <button type="button" className={`template-card${chosen ? ' chosen' : ''}`} data-testid={`template-${t.key}`} aria-pressed={chosen} onClick={onChoose}>
      <Preview doc={doc} />
      <span className="template-body">
        <span className="template-title">{templateTitle(t.key)}</span>
        <span className="template-desc">{t.doc.description ?? ''}</span>
        <span className="template-facts" data-testid="template-facts">
          {report ? (
            <>
              <span>
                {formatShape(report.input_shape)} → {formatShape(report.output_shape)}
              </span>
              <span>{formatCount(report.totals.params)} params</span>
            </>
          ) : (
            <span className="muted">{failed ?? 'analysing…'}</span>
          )}
        </span>
      </span>
    </button>
  );
}

export function TemplateGallery() {
  const list = useProject((s) => s.projects);
  const [chosen, setChosen] = useState<Template | null>(null);
  const [name, setName] = useState('');
  // Templates open top to bottom: the preview shows the same layout the canvas will.
  const laidOut = useMemo(() => new Map(templates.map((t) => [t.key, layoutDoc(t.doc, 'TB')] as const)), []);
  const existing = list.find((p) => p.name === name.trim());
  const choose = (t: Template) => {
    setChosen(t);
    setName(t.doc.name || t.key);
  };
  if (templates.length === 0) return <p className="muted">No templates in examples/.</p>;
  return (
    <div className="template-gallery" data-testid="template-gallery">
      <div className="template-grid">
        {templates.map((t) => (
          <Card key={t.key} t={t} doc={laidOut.get(t.key)!} chosen={chosen?.key === t.key} onChoose={() => choose(t)} />
        ))}
      </div>
      {chosen && (
        <div className="template-create">
          <label className="field">
            <span className="field-name">New project's name</span>
            <input type="text" value={name} onChange={(e) => setName(e.target.value)} data-testid="template-name" aria-label="New project's name" />
          </label>
          {existing ? (
            <div className="warning" data-testid="template-exists">
              A project named “{existing.name}” already exists.{' '}
              <button type="button" onClick={() => void projects.open(existing.id)} data-testid="template-open-existing">
                Open it
              </button>{' '}
              or choose another name.
            </div>
          ) : null}
          <button
            type="button"
            className="primary"
            disabled={!name.trim() || Boolean(existing)}
            data-testid="template-create"
            onClick={() => {
              const doc = { ...laidOut.get(chosen.key)!, name: name.trim() };
              void projects.create(name.trim(), doc);
            }}
          >
            Create “{name.trim() || '…'}” from {templateTitle(chosen.key)}
          </button>
        </div>
      )}
    </div>
  );
}
