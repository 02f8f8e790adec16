import { useEffect, useMemo, useState } from 'react';
import { api, downloadBlob } from '../api/client';
import type { ExportFormat } from '../api/types';
import { analysisKey, flowToGraph } from '../graph/convert';
import { tokenize } from '../lib/highlight';
import { editor, useEditor } from '../state/editorStore';

export const EXPORTS: { format: ExportFormat; label: string }[] = [
  { format: 'python', label: 'Python' },
  { format: 'torchscript', label: 'TorchScript' },
  { format: 'onnx', label: 'ONNX' },
  { format: 'json', label: 'JSON' },
];

export async function exportModel(format: ExportFormat) {
  try {
    const { blob, filename } = await api.export(editor.currentGraph(), format);
    downloadBlob(blob, filename);
  } catch (e) {
    editor.notify(`Export failed: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** The generated PyTorch code, refreshed after each edit the backend accepts. */
export function CodeView() {
  const nodes = useEditor((s) => s.nodes);
  const edges = useEditor((s) => s.edges);
  const name = useEditor((s) => s.name);
  const valid = useEditor((s) => s.report?.valid ?? false);
  const key = useMemo(() => analysisKey(flowToGraph({ nodes, edges }, name)), [nodes, edges, name]);
  const [code, setCode] = useState<string>('');
  const [error, setError] = useState<string | null>(null);
  const [copied, setCopied] = useState(false);

  useEffect(() => {
    if (!valid) return;
    const controller = new AbortController();
    const t = setTimeout(async () => {
      try {
        const { blob } = await api.export(editor.currentGraph(), 'python', controller.signal);
        setCode(await blob.text());
        setError(null);
      } catch (e) {
        if (!controller.signal.aborted) setError(e instanceof Error ? e.message : String(e));
      }
    }, 250);
    return () => {
      clearTimeout(t);
      controller.abort();
    };
  }, [key, valid]);

  const tokens = useMemo(() => tokenize(code), [code]);
  return (
    <div className="code-view" data-testid="code-view">
      <div className="row wrap">
        <span className="muted">Download</span>
        <button
          type="button"
          disabled={!code}
          onClick={async () => {
            await navigator.clipboard?.writeText(code);
            setCopied(true);
            setTimeout(() => setCopied(false), 1200);
          }}
        >
          {copied ? 'Copied' : 'Copy'}
        </button>
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
    </div>
  );
}
