import { useMemo } from 'react';
import { analysisKey, flowToGraph } from '../graph/convert';
import { useEditor } from './editorStore';

/** Changes exactly when the graph's analysed content (or its name) does. */
export function useGraphKey(): string {
  const nodes = useEditor((s) => s.nodes);
  const edges = useEditor((s) => s.edges);
  const name = useEditor((s) => s.name);
  return useMemo(() => analysisKey(flowToGraph({ nodes, edges }, name)), [nodes, edges, name]);
}
