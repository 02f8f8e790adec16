// Keeps the backend's report in step with the graph: every change that matters to the analysis
// (not positions or selection) requests a report (throttled, see reportSync); stale answers are dropped.
import { type ReportOptions, api } from '../api/client';
import type { GraphDoc } from '../api/types';
import { analysisKey, flowToGraph } from '../graph/convert';
import { editor, useEditor } from './editorStore';
import { createReportSync } from './reportSync';

export function startReportSync(delayMs = 150): () => void {
  let lastKey = '';
  const sync = createReportSync<{ doc: GraphDoc; opts: ReportOptions }, Awaited<ReturnType<typeof api.report>>>({
    fetchReport: ({ doc, opts }, signal) => api.report(doc, signal, opts),
    onReport: (report) => editor.setReport(report),
    onError: (e) => editor.setReportFailed(e instanceof Error ? e.message : String(e)),
    delayMs,
  });
  const check = () => {
    const s = useEditor.getState();
    if (s.dragStart) return; // positions only while dragging
    const doc = flowToGraph({ nodes: s.nodes, edges: s.edges }, s.name);
    const key = analysisKey(doc) + JSON.stringify(s.reportOptions);
    if (key === lastKey) return;
    lastKey = key;
    editor.setReportPending(true);
    sync.request({ doc, opts: s.reportOptions });
  };
  const unsubscribe = useEditor.subscribe((s, prev) => {
    if (s.nodes !== prev.nodes || s.edges !== prev.edges || s.name !== prev.name || s.dragStart !== prev.dragStart || s.reportOptions !== prev.reportOptions) check();
  });
  check();
  return () => {
    unsubscribe();
    sync.dispose();
  };
}
