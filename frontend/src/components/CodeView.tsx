import { Fragment, useEffect, useMemo, useRef, useState } from 'react';
import { api, downloadBlob } from '../api/client';
import type { ExportFormat, ScriptView } from '../api/types';
import { type Token, tokenize } from '../lib/highlight';
import { useShallow } from 'zustand/react/shallow';
import { editor, selectedIds, useEditor } from '../state/editorStore';
import { useGraphKey } from '../state/graphKey';
import { useTraining } from '../state/trainingStore';
import './codeview.css';

export const EXPORTS: { format: ExportFormat; label: string }[] = [
  { format: 'python', label: 'Python' },
  { format: 'torchscript', label: 'TorchScript' },
  { format: 'onnx', label: 'ONNX' },
  { format: 'json', label: 'JSON' },
];

export async function exportModel(format: ExportFormat, config?: Record<string, unknown>) {
  try {
    const { blob, filename } = await api.export(editor.currentGraph(), format, undefined, config);
    downloadBlob(blob, filename);
  } catch (e) {
    editor.notify(`Export failed: ${e instanceof Error ? e.message : String(e)}`);
  }
}

type View = 'model' | 'script';
const VIEW_KEY = 'layerlab.codeView';

/** The generated PyTorch: the model alone, or the whole training run under the run form's settings. */
export function CodeView() {
  // The choice outlives the tab switch (the view unmounts while another side tab is open).
  const [view, setViewState] = useState<View>(() => (sessionStorage.getItem(VIEW_KEY) === 'script' ? 'script' : 'model'));
  const setView = (v: View) => {
    sessionStorage.setItem(VIEW_KEY, v);
    setViewState(v);
  };
  return (
    <div className="code-view" data-testid="code-view">
      <div className="code-tabs" role="tablist" aria-label="Generated code">
        {(
          [
            ['model', 'Model'],
            ['script', 'Training script'],
          ] as const
        ).map(([v, label]) => (
          <button
            key={v}
            type="button"
            role="tab"
            aria-selected={view === v}
            className={view === v ? 'active' : ''}
            onClick={() => setView(v)}
            data-testid={`code-tab-${v}`}
          >
            {label}
          </button>
        ))}
      </div>
      {view === 'model' ? <ModelCode /> : <TrainingScript />}
    </div>
  );
}

/** The server's answer for the current graph (and settings), refetched after each accepted edit. */
function useGenerated<T>(deps: unknown[], fetcher: (signal: AbortSignal) => Promise<T>): { value: T | null; error: string | null } {
  const valid = useEditor((s) => s.report?.valid ?? false);
  const [value, setValue] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    if (!valid) return;
    const controller = new AbortController();
    const t = setTimeout(async () => {
      try {
        setValue(await fetcher(controller.signal));
        setError(null);
      } catch (e) {
        if (!controller.signal.aborted) setError(e instanceof Error ? e.message : String(e));
      }
    }, 250);
    return () => {
      clearTimeout(t);
      controller.abort();
    };
  }, [...deps, valid]); // the fetcher reads the values the deps name
  return { value, error };
}

function CopyButton({ text }: { text: string }) {
  const [copied, setCopied] = useState(false);
  return (
    <button
      type="button"
      disabled={!text}
      onClick={async () => {
        await navigator.clipboard?.writeText(text);
        setCopied(true);
        setTimeout(() => setCopied(false), 1200);
      }}
    >
      {copied ? 'Copied' : 'Copy'}
    </button>
  );
}

function ModelCode() {
  const key = useGraphKey();
  const valid = useEditor((s) => s.report?.valid ?? false);
  const { value, error } = useGenerated([key], async (signal) => (await api.export(editor.currentGraph(), 'python', signal)).blob.text());
  const code = value ?? '';
  const tokens = useMemo(() => tokenize(code), [code]);
  return (
    <>
      <div className="row wrap">
        <span className="muted">Download</span>
        <CopyButton text={code} />
        {EXPORTS.map((x) => (
          <button key={x.format} type="button" onClick={() => void exportModel(x.format)} data-testid={`export-${x.format}`}>
            {x.label}
          </button>
        ))}
      </div>
      {!valid && <div className="muted pad">The graph has problems; showing the last valid code.</div>}
      {error && <div className="node-error pad">{error}</div>}
      <pre className="code" data-testid="code">
        {tokens.map((t, i) => (t.kind === 'text' ? t.text : <span key={i} className={`tok-${t.kind}`}>{t.text}</span>))}
      </pre>
    </>
  );
}

/** Tokens cut at line ends, so each line can be its own element. */
function tokenLines(tokens: Token[]): Token[][] {
  const lines: Token[][] = [[]];
  for (const t of tokens) {
    const parts = t.text.split('\n');
    parts.forEach((part, i) => {
      if (i > 0) lines.push([]);
      if (part) lines[lines.length - 1].push({ kind: t.kind, text: part });
    });
  }
  return lines;
}

/** The canvas node under the pointer (React Flow marks each node element with its id). */
function useHoveredNode(): string | null {
  const [hovered, setHovered] = useState<string | null>(null);
  useEffect(() => {
    const over = (e: MouseEvent) => {
      const el = e.target instanceof Element ? e.target.closest('.react-flow__node') : null;
      setHovered(el?.getAttribute('data-id') ?? null);
    };
    document.addEventListener('mouseover', over);
    return () => document.removeEventListener('mouseover', over);
  }, []);
  return hovered;
}

function TrainingScript() {
  const key = useGraphKey();
  const valid = useEditor((s) => s.report?.valid ?? false);
  const draft = useTraining((s) => s.draft);
  const draftKey = useMemo(() => JSON.stringify(draft), [draft]);
  const { value, error } = useGenerated<ScriptView>([key, draftKey], (signal) =>
    api.trainingScript(editor.currentGraph(), draft, signal),
  );
  const selected = useEditor(useShallow(selectedIds));
  const hovered = useHoveredNode();
  const lines = useMemo(() => tokenLines(tokenize(value?.code ?? '')), [value]);
  const nodeOfLine = useMemo(() => {
    const out = new Map<number, string>();
    for (const [node, rows] of Object.entries(value?.nodes ?? {})) for (const r of rows) if (!out.has(r)) out.set(r, node);
    return out;
  }, [value]);
  const frozen = useMemo(() => new Set(value?.frozen_lines ?? []), [value]);
  const focus = hovered && value?.nodes[hovered] ? [hovered] : selected;
  const lit = useMemo(() => new Set(focus.flatMap((id) => value?.nodes[id] ?? [])), [focus, value]);
  const first = Math.min(...lit);
  const pre = useRef<HTMLPreElement>(null);
  useEffect(() => {
    // Bring the node's first line into view as the pointer moves over the canvas.
    if (Number.isFinite(first)) pre.current?.querySelector(`[data-line="${first}"]`)?.scrollIntoView({ block: 'center' });
  }, [first]);

  return (
    <>
      <div className="row wrap">
        <span className="muted">Download</span>
        <CopyButton text={value?.code ?? ''} />
        <button type="button" onClick={() => void exportModel('script', draft)} data-testid="export-script">
          train.py
        </button>
        <button type="button" onClick={() => void exportModel('ipynb', draft)} data-testid="export-ipynb">
          Notebook
        </button>
      </div>
      <div className="muted pad">
        The whole run under the Train tab&apos;s settings; on the CPU it reproduces the run. Hover a node to find its lines;
        click a line to select its node.
      </div>
      {!valid && <div className="muted pad">The graph has problems; showing the last valid script.</div>}
      {error && (
        <div className="node-error pad" data-testid="script-error">
          {error}
        </div>
      )}
      <pre className="code script-code" data-testid="script-code" ref={pre}>
        {lines.map((toks, i) => {
          const n = i + 1;
          const node = nodeOfLine.get(n);
          const cls = ['code-line', lit.has(n) ? 'lit' : '', frozen.has(n) ? 'frozen' : '', node ? 'linked' : ''].filter(Boolean).join(' ');
          return (
            <div
              key={n}
              className={cls}
              data-line={n}
              data-node={node}
              title={frozen.has(n) ? 'frozen: this layer gets no gradients and the optimizer never sees it' : node ? `select ${node}` : undefined}
              onClick={node ? () => editor.select(node) : undefined}
            >
              <span className="ln" aria-hidden="true">
                {n}
              </span>
              {toks.length === 0
                ? '\u200b'
                : toks.map((t, j) => (
                    <Fragment key={j}>{t.kind === 'text' ? t.text : <span className={`tok-${t.kind}`}>{t.text}</span>}</Fragment>
                  ))}
              {frozen.has(n) && <span className="frozen-mark">frozen</span>}
            </div>
          );
        })}
      </pre>
    </>
  );
}
