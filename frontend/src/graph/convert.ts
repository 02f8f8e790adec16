// Graph JSON (layerlab.graph/1) ⇄ React Flow nodes and edges. Pure functions, no React.
//
// Positions: a node's `position` is React Flow's, i.e. relative to its block for a child.
// Block sizes are not part of the format; they are recomputed from the children on load.
import type { GraphDoc, GraphEdge, GraphNode } from '../api/types';
import { type BlockFlowNode, type Direction, type FlowEdge, type FlowGraph, type FlowNode, INNER_IN, INNER_OUT, type LayerFlowNode, isBlock } from './kinds';
import { autoLayout, fitBlocks } from './layout';

export const GRAPH_FORMAT = 'layerlab.graph/1' as const;

export function edgeId(e: { source: string; target: string; sourceHandle?: string | null; targetHandle?: string | null }): string {
  const sh = e.sourceHandle ? `:${e.sourceHandle}` : '';
  const th = e.targetHandle ? `:${e.targetHandle}` : '';
  return `e_${e.source}${sh}__${e.target}${th}`;
}

/** Parents before children, otherwise keeping the graph's order (React Flow needs this). */
export function sortParentsFirst<T extends { id: string; parentId?: string }>(nodes: T[]): T[] {
  const byId = new Map(nodes.map((n) => [n.id, n] as const));
  const placed = new Set<string>();
  const out: T[] = [];
  const visit = (n: T, trail: Set<string>) => {
    if (placed.has(n.id)) return;
    const parent = n.parentId ? byId.get(n.parentId) : undefined;
    if (parent && !trail.has(parent.id)) {
      trail.add(n.id);
      visit(parent, trail);
    }
    placed.add(n.id);
    out.push(n);
  };
  for (const n of nodes) visit(n, new Set());
  return out;
}

function hiddenByCollapse(n: GraphNode, byId: Map<string, GraphNode>, collapsed: Set<string>): boolean {
  let p = n.parent;
  const seen = new Set<string>();
  while (p && !seen.has(p)) {
    if (collapsed.has(p)) return true;
    seen.add(p);
    p = byId.get(p)?.parent;
  }
  return false;
}

export interface ToFlowOptions {
  /** Blocks shown collapsed (an editor preference, not part of the format). */
  collapsed?: Iterable<string>;
  /** Layout direction for a graph without positions (default: inferred, else top to bottom). */
  direction?: Direction;
}

/** Left to right when the saved positions mostly run horizontally along the edges. */
export function inferDirection(doc: GraphDoc): Direction {
  const byId = new Map(doc.nodes.map((n) => [n.id, n] as const));
  let dx = 0;
  let dy = 0;
  for (const e of doc.edges) {
    const a = byId.get(e.source);
    const b = byId.get(e.target);
    if (!a?.position || !b?.position || a.parent !== b.parent) continue;
    dx += Math.abs(b.position.x - a.position.x);
    dy += Math.abs(b.position.y - a.position.y);
  }
  return dx > dy ? 'LR' : 'TB';
}

/** Entry (block → child) and exit (child → block) edges attach to the block's inner handles. */
function innerHandles(e: GraphEdge, byId: Map<string, GraphNode>): { sourceHandle?: string; targetHandle?: string } {
  if (byId.get(e.target)?.parent === e.source) return { sourceHandle: INNER_IN };
  if (byId.get(e.source)?.parent === e.target) return { targetHandle: INNER_OUT };
  return {};
}

export function graphToFlow(doc: GraphDoc, opts: ToFlowOptions = {}): FlowGraph {
  const collapsed = new Set(opts.collapsed ?? []);
  const byId = new Map(doc.nodes.map((n) => [n.id, n] as const));
  const needsLayout = doc.nodes.some((n) => !n.position);
  const nodes: FlowNode[] = doc.nodes.map((n) => {
    const common = {
      id: n.id,
      position: n.position ? { x: n.position.x, y: n.position.y } : { x: 0, y: 0 },
      ...(n.parent ? { parentId: n.parent } : {}),
      ...(hiddenByCollapse(n, byId, collapsed) ? { hidden: true } : {}),
    };
    const fields = {
      params: { ...(n.params ?? {}) },
      frozen: Boolean(n.frozen),
      ...(n.label != null ? { label: n.label } : {}),
      ...(n.name != null ? { name: n.name } : {}),
      ...(n.init != null ? { init: n.init } : {}),
    };
    if (n.op === 'Block') {
      const node: BlockFlowNode = {
        ...common,
        type: 'block',
        data: { ...fields, op: 'Block', collapsed: collapsed.has(n.id) },
      };
      return node;
    }
    const node: LayerFlowNode = { ...common, type: 'layer', data: { ...fields, op: n.op } };
    return node;
  });
  const edges: FlowEdge[] = doc.edges.map((e) => ({
    id: e.id ?? edgeId(e),
    source: e.source,
    target: e.target,
    ...(e.sourceHandle ? { sourceHandle: e.sourceHandle } : {}),
    ...(e.targetHandle ? { targetHandle: e.targetHandle } : {}),
    ...innerHandles(e, byId),
  }));
  const flow = { nodes: sortParentsFirst(nodes), edges };
  if (needsLayout) return autoLayout(flow, opts.direction ?? 'TB');
  return { nodes: fitBlocks(flow.nodes), edges };
}

/** The same graph with every container laid out again (a template opened top to bottom). */
export function layoutDoc(doc: GraphDoc, direction: Direction): GraphDoc {
  const flow = autoLayout(graphToFlow(doc, { direction }), direction);
  return { ...flowToGraph(flow, doc.name), ...(doc.description ? { description: doc.description } : {}) };
}

const round = (v: number) => Math.round(v * 10) / 10;

export function flowToGraph(flow: FlowGraph, name = 'model'): GraphDoc {
  const nodes: GraphNode[] = flow.nodes.map((n) => {
    const out: GraphNode = { id: n.id, op: n.data.op, params: { ...n.data.params } };
    if (n.parentId) out.parent = n.parentId;
    if (n.data.name) out.name = n.data.name;
    if (n.data.label) out.label = n.data.label;
    if (n.data.frozen) out.frozen = true;
    if (n.data.init != null) out.init = n.data.init;
    out.position = { x: round(n.position.x), y: round(n.position.y) };
    return out;
  });
  const edges: GraphEdge[] = flow.edges.map((e) => {
    const out: GraphEdge = { id: e.id, source: e.source, target: e.target };
    // The inner handles are the editor's drawing of entry/exit edges, not part of the graph.
    if (e.sourceHandle && e.sourceHandle !== INNER_IN) out.sourceHandle = e.sourceHandle;
    if (e.targetHandle && e.targetHandle !== INNER_OUT) out.targetHandle = e.targetHandle;
    return out;
  });
  return { format: GRAPH_FORMAT, name, nodes, edges };
}

/** The blocks currently collapsed, to carry across a round trip. */
export function collapsedBlocks(nodes: FlowNode[]): string[] {
  return nodes.filter((n) => isBlock(n) && n.data.collapsed).map((n) => n.id);
}

/**
 * A stable key for what the backend analyses: positions and editor-only state left out, so
 * dragging a node does not trigger a new report.
 */
export function analysisKey(doc: GraphDoc): string {
  return JSON.stringify({
    nodes: doc.nodes.map(({ position: _p, ...rest }) => rest),
    edges: doc.edges.map((e) => [e.source, e.target, e.sourceHandle ?? null, e.targetHandle ?? null]),
  });
}

/** Graph for the backend: positions kept (they are part of the saved format). */
export function parseGraphJson(text: string): GraphDoc {
  const raw = JSON.parse(text) as Partial<GraphDoc>;
  if (!raw || !Array.isArray(raw.nodes)) throw new Error('not a LayerLab graph: no "nodes" list');
  if (raw.format && raw.format !== GRAPH_FORMAT) throw new Error(`unsupported format ${String(raw.format)}`);
  return { format: GRAPH_FORMAT, name: raw.name ?? 'model', nodes: raw.nodes, edges: raw.edges ?? [] };
}
