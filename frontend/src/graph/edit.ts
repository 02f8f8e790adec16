// Pure edits on the editor's graph. Each takes a FlowGraph and returns a new one; none of them
// decides whether the model is valid (the backend's report does that).
import type { OpName } from '../api/types';
import { allocateIds, nextId } from './ids';
import { edgeId, sortParentsFirst } from './convert';
import {
  BLOCK_PAD,
  COLLAPSED_BLOCK,
  LAYER_SIZE,
  type BlockFlowNode,
  type FlowEdge,
  type FlowGraph,
  type FlowNode,
  type LayerFlowNode,
  isBlock,
} from './kinds';
import { fitBlocks } from './layout';

export function makeNode(
  op: OpName,
  id: string,
  position: { x: number; y: number },
  params: Record<string, unknown> = {},
  parentId?: string,
): FlowNode {
  // No `extent: 'parent'`: a layer can be dragged out of its block (the canvas reparents it on drop).
  const where = { id, position, ...(parentId ? { parentId } : {}) };
  if (op === 'Block') {
    const block: BlockFlowNode = {
      ...where,
      type: 'block',
      data: { op: 'Block', params, frozen: false, collapsed: false },
      style: { width: 260, height: 160 },
      width: 260,
      height: 160,
    };
    return block;
  }
  const layer: LayerFlowNode = { ...where, type: 'layer', data: { op, params, frozen: false } };
  return layer;
}

export function addNode(g: FlowGraph, node: FlowNode): FlowGraph {
  const nodes = sortParentsFirst([...g.nodes, node]);
  return { nodes: node.parentId ? fitBlocks(nodes) : nodes, edges: g.edges };
}

/** Ids of the given nodes and everything inside them (blocks contain their children). */
export function withDescendants(nodes: FlowNode[], ids: Iterable<string>): Set<string> {
  const out = new Set(ids);
  let grew = true;
  while (grew) {
    grew = false;
    for (const n of nodes) {
      if (n.parentId && out.has(n.parentId) && !out.has(n.id)) {
        out.add(n.id);
        grew = true;
      }
    }
  }
  return out;
}

/**
 * Removes nodes (and whatever is inside removed blocks). With `reconnect`, a removed node that sat
 * in a chain (exactly one edge in, one edge out) has its neighbours joined, through runs of such
 * nodes too: deleting B and C from A → B → C → D leaves A → D.
 */
export function removeNodes(g: FlowGraph, ids: Iterable<string>, opts: { reconnect?: boolean } = {}): FlowGraph {
  const gone = withDescendants(g.nodes, ids);
  const nodes = g.nodes.filter((n) => !gone.has(n.id));
  if (!opts.reconnect) return { nodes, edges: g.edges.filter((e) => !gone.has(e.source) && !gone.has(e.target)) };
  return { nodes, edges: joinAround(g.edges, gone) };
}

/**
 * The edges without those touching `gone`, where each run of gone nodes that sat in a chain
 * (exactly one edge in, one edge out) is bridged: A → B → C → D with B, C gone gives A → D.
 */
function joinAround(all: FlowEdge[], gone: Set<string>): FlowEdge[] {
  const kept = all.filter((e) => !gone.has(e.source) && !gone.has(e.target));
  const into = new Map<string, FlowEdge[]>();
  const outOf = new Map<string, FlowEdge[]>();
  for (const e of all) {
    (into.get(e.target) ?? into.set(e.target, []).get(e.target)!).push(e);
    (outOf.get(e.source) ?? outOf.set(e.source, []).get(e.source)!).push(e);
  }
  const inChain = (id: string) => (into.get(id)?.length ?? 0) === 1 && (outOf.get(id)?.length ?? 0) === 1;
  const edges = [...kept];
  const have = new Set(kept.map((e) => `${e.source}->${e.target}`));
  for (const first of all) {
    // From a kept node into a gone chain node: follow the chain to the first kept node.
    if (gone.has(first.source) || !gone.has(first.target)) continue;
    let cur = first.target;
    let last: FlowEdge | undefined;
    const seen = new Set<string>();
    while (gone.has(cur) && inChain(cur) && !seen.has(cur)) {
      seen.add(cur);
      last = outOf.get(cur)![0];
      cur = last.target;
    }
    if (!last || gone.has(cur) || cur === first.source) continue;
    const key = `${first.source}->${cur}`;
    if (have.has(key)) continue;
    have.add(key);
    edges.push(makeEdge({ source: first.source, target: cur, sourceHandle: first.sourceHandle, targetHandle: last.targetHandle }));
  }
  return edges;
}

function makeEdge(c: { source: string; target: string; sourceHandle?: string | null; targetHandle?: string | null }): FlowEdge {
  return {
    id: edgeId(c),
    source: c.source,
    target: c.target,
    ...(c.sourceHandle ? { sourceHandle: c.sourceHandle } : {}),
    ...(c.targetHandle ? { targetHandle: c.targetHandle } : {}),
  };
}

export function removeEdges(g: FlowGraph, ids: Iterable<string>): FlowGraph {
  const gone = new Set(ids);
  return { nodes: g.nodes, edges: g.edges.filter((e) => !gone.has(e.id)) };
}

export function connect(g: FlowGraph, c: { source: string; target: string; sourceHandle?: string | null; targetHandle?: string | null }): FlowGraph {
  if (c.source === c.target) return g;
  if (g.edges.some((e) => e.source === c.source && e.target === c.target)) return g;
  const edge: FlowEdge = {
    id: edgeId(c),
    source: c.source,
    target: c.target,
    ...(c.sourceHandle ? { sourceHandle: c.sourceHandle } : {}),
    ...(c.targetHandle ? { targetHandle: c.targetHandle } : {}),
  };
  return { nodes: g.nodes, edges: [...g.edges, edge] };
}

/**
 * Why an edge being drawn cannot be made, or null when it can: it would cross a block's boundary
 * (only a block's own entry and exit reach inside it) or close a cycle. Checked while the person
 * drags, so the edge is refused with the reason instead of drawn and reported afterwards.
 */
export function connectionProblem(g: FlowGraph, c: { source: string | null; target: string | null }): string | null {
  const byId = new Map(g.nodes.map((n) => [n.id, n] as const));
  const s = c.source ? byId.get(c.source) : undefined;
  const t = c.target ? byId.get(c.target) : undefined;
  if (!s || !t) return null;
  if (s.id === t.id) return `${s.id} cannot feed itself`;
  const entry = t.parentId === s.id;
  const exit = s.parentId === t.id;
  if (!entry && !exit && s.parentId !== t.parentId) {
    const where = (n: FlowNode) => (n.parentId ? `inside ${n.parentId}` : 'at the top level');
    return `${s.id} is ${where(s)} and ${t.id} is ${where(t)}: an edge cannot cross a block's boundary; connect to the block instead`;
  }
  if (entry || exit) return null;
  // A path already leading from the target back to the source would make this edge a cycle.
  const next = new Map<string, string[]>();
  for (const e of g.edges) {
    const a = byId.get(e.source);
    const b = byId.get(e.target);
    if (!a || !b || b.parentId === a.id || a.parentId === b.id) continue; // entry/exit edges stay inside
    (next.get(e.source) ?? next.set(e.source, []).get(e.source)!).push(e.target);
  }
  const seen = new Set<string>([t.id]);
  const stack = [t.id];
  while (stack.length) {
    const cur = stack.pop()!;
    if (cur === s.id) return `${t.id} already leads to ${s.id}: this edge would make a cycle`;
    for (const n of next.get(cur) ?? []) {
      if (!seen.has(n)) {
        seen.add(n);
        stack.push(n);
      }
    }
  }
  return null;
}

export function updateNodeData(g: FlowGraph, id: string, patch: Partial<FlowNode['data']>): FlowGraph {
  return {
    nodes: g.nodes.map((n) => (n.id === id ? ({ ...n, data: { ...n.data, ...patch } } as FlowNode) : n)),
    edges: g.edges,
  };
}

/** Sets one param; `undefined` removes it so the backend's default applies. */
export function setParam(g: FlowGraph, id: string, key: string, value: unknown): FlowGraph {
  const node = g.nodes.find((n) => n.id === id);
  if (!node) return g;
  const params = { ...node.data.params };
  if (value === undefined) delete params[key];
  else params[key] = value;
  return updateNodeData(g, id, { params });
}

export function toggleFrozen(g: FlowGraph, id: string): FlowGraph {
  const node = g.nodes.find((n) => n.id === id);
  return node ? updateNodeData(g, id, { frozen: !node.data.frozen }) : g;
}

/**
 * Inserts a new `op` node in front of `targetId`: every edge that fed the target now feeds the
 * new node, which feeds the target (the backend's `insert_before` fix).
 */
export function insertBefore(g: FlowGraph, targetId: string, op: OpName, params: Record<string, unknown> = {}): { graph: FlowGraph; id: string } {
  const target = g.nodes.find((n) => n.id === targetId);
  if (!target) return { graph: g, id: '' };
  const id = nextId(op, g.nodes.map((n) => n.id));
  const incoming = g.edges.filter((e) => e.target === targetId);
  const preds = incoming.map((e) => g.nodes.find((n) => n.id === e.source)).filter((n): n is FlowNode => !!n && n.parentId === target.parentId);
  const position =
    preds.length === 1
      ? { x: Math.round((preds[0].position.x + target.position.x) / 2) + 30, y: Math.round((preds[0].position.y + target.position.y) / 2) }
      : { x: target.position.x + 30, y: target.position.y - LAYER_SIZE.height };
  const node = makeNode(op, id, position, params, target.parentId);
  const edges: FlowEdge[] = [];
  for (const e of g.edges) {
    if (e.target === targetId) {
      const moved = { source: e.source, target: id, sourceHandle: e.sourceHandle };
      edges.push({ id: edgeId(moved), source: e.source, target: id, ...(e.sourceHandle ? { sourceHandle: e.sourceHandle } : {}) });
    } else edges.push(e);
  }
  edges.push({ id: edgeId({ source: id, target: targetId }), source: id, target: targetId });
  const nodes = sortParentsFirst([...g.nodes, node]);
  return { graph: { nodes: target.parentId ? fitBlocks(nodes) : nodes, edges }, id };
}

function absolutePosition(nodes: FlowNode[], n: FlowNode): { x: number; y: number } {
  const byId = new Map(nodes.map((m) => [m.id, m] as const));
  let { x, y } = n.position;
  let p = n.parentId;
  while (p) {
    const b = byId.get(p);
    if (!b) break;
    x += b.position.x;
    y += b.position.y;
    p = b.parentId;
  }
  return { x, y };
}

export type GroupResult = { graph: FlowGraph; blockId: string } | { graph: FlowGraph; blockId: null; reason: string };

/**
 * Groups nodes that share a container into a new Block. Edges from outside into the group go to
 * the block; edges out of the group leave from the block; edges inside stay.
 */
export function groupIntoBlock(g: FlowGraph, ids: string[]): GroupResult {
  const chosen = g.nodes.filter((n) => ids.includes(n.id));
  if (chosen.length === 0) return { graph: g, blockId: null, reason: 'select some layers first' };
  const parent = chosen[0].parentId;
  if (chosen.some((n) => n.parentId !== parent)) {
    return { graph: g, blockId: null, reason: 'the selected layers are in different blocks' };
  }
  if (chosen.some((n) => n.data.op === 'Input' || n.data.op === 'Output')) {
    return { graph: g, blockId: null, reason: 'Input and Output stay outside blocks' };
  }
  const inside = new Set(chosen.map((n) => n.id));
  const blockId = nextId('Block', g.nodes.map((n) => n.id));
  let minX = Infinity;
  let minY = Infinity;
  for (const n of chosen) {
    minX = Math.min(minX, n.position.x);
    minY = Math.min(minY, n.position.y);
  }
  const origin = { x: minX - BLOCK_PAD.x, y: minY - BLOCK_PAD.top };
  const block = makeNode('Block', blockId, origin, {}, parent);
  const nodes = g.nodes.map((n) =>
    inside.has(n.id)
      ? ({ ...n, parentId: blockId, position: { x: n.position.x - origin.x, y: n.position.y - origin.y }, selected: false } as FlowNode)
      : n,
  );
  const edges: FlowEdge[] = [];
  const seen = new Set<string>();
  for (const e of g.edges) {
    const sIn = inside.has(e.source);
    const tIn = inside.has(e.target);
    let next: FlowEdge = e;
    if (!sIn && tIn) next = { id: '', source: e.source, target: blockId };
    else if (sIn && !tIn) next = { id: '', source: blockId, target: e.target };
    if (next !== e) next = { ...next, id: edgeId(next) };
    const key = `${next.source}->${next.target}`;
    if (seen.has(key)) continue;
    seen.add(key);
    edges.push(next);
  }
  return { graph: { nodes: fitBlocks(sortParentsFirst([...nodes, block])), edges }, blockId };
}

/** Dissolves a block: its children move up a level, the block's edges reconnect to them. */
export function ungroup(g: FlowGraph, blockId: string): FlowGraph {
  const block = g.nodes.find((n) => n.id === blockId);
  if (!block || !isBlock(block)) return g;
  const kids = g.nodes.filter((n) => n.parentId === blockId);
  const kidIds = new Set(kids.map((k) => k.id));
  const entries = kids.filter((k) => !g.edges.some((e) => e.target === k.id && kidIds.has(e.source)));
  const exits = kids.filter((k) => !g.edges.some((e) => e.source === k.id && kidIds.has(e.target)));
  const nodes: FlowNode[] = [];
  for (const n of g.nodes) {
    if (n.id === blockId) continue;
    if (kidIds.has(n.id)) {
      const moved = { ...n, position: { x: n.position.x + block.position.x, y: n.position.y + block.position.y } } as FlowNode;
      if (block.parentId) moved.parentId = block.parentId;
      else delete moved.parentId;
      nodes.push(moved);
    } else nodes.push(n);
  }
  const edges: FlowEdge[] = [];
  for (const e of g.edges) {
    if (e.target === blockId) for (const k of entries) edges.push({ id: edgeId({ source: e.source, target: k.id }), source: e.source, target: k.id });
    else if (e.source === blockId) for (const k of exits) edges.push({ id: edgeId({ source: k.id, target: e.target }), source: k.id, target: e.target });
    else edges.push(e);
  }
  return { nodes: sortParentsFirst(nodes), edges };
}

export function setCollapsed(g: FlowGraph, blockId: string, collapsed: boolean): FlowGraph {
  const inside = withDescendants(g.nodes, [blockId]);
  inside.delete(blockId);
  // A node stays hidden while any enclosing block is collapsed.
  const byId = new Map(g.nodes.map((n) => [n.id, n] as const));
  const hidden = (n: FlowNode): boolean => {
    let p = n.parentId;
    while (p) {
      const b = byId.get(p)!;
      const c = p === blockId ? collapsed : isBlock(b) && b.data.collapsed;
      if (c) return true;
      p = b.parentId;
    }
    return false;
  };
  const nodes = g.nodes.map((n) => {
    if (n.id === blockId && isBlock(n)) {
      const size = collapsed ? COLLAPSED_BLOCK : { width: n.width, height: n.height };
      return { ...n, data: { ...n.data, collapsed }, width: size.width, height: size.height, style: { ...n.style, width: size.width, height: size.height } } as FlowNode;
    }
    if (inside.has(n.id)) return { ...n, hidden: hidden(n) } as FlowNode;
    return n;
  });
  return { nodes: fitBlocks(nodes), edges: g.edges };
}

export interface Clipboard {
  nodes: FlowNode[];
  edges: FlowEdge[];
}

/** Copies the nodes (with everything inside copied blocks) and the edges among them. */
export function copySelection(g: FlowGraph, ids: string[]): Clipboard {
  const all = withDescendants(g.nodes, ids);
  const nodes = g.nodes.filter((n) => all.has(n.id));
  const edges = g.edges.filter((e) => all.has(e.source) && all.has(e.target));
  return structuredClone({ nodes, edges });
}

/** Pastes a clipboard with fresh ids, shifted; returns the new top-level ids (to select them). */
export function paste(g: FlowGraph, clip: Clipboard, offset = { x: 40, y: 40 }): { graph: FlowGraph; ids: string[] } {
  if (clip.nodes.length === 0) return { graph: g, ids: [] };
  const fresh = allocateIds(clip.nodes.map((n) => n.data.op), g.nodes.map((n) => n.id));
  const map = new Map(clip.nodes.map((n, i) => [n.id, fresh[i]] as const));
  const existing = new Set(g.nodes.map((n) => n.id));
  const top: string[] = [];
  const nodes = clip.nodes.map((n) => {
    const copy = structuredClone(n) as FlowNode;
    copy.id = map.get(n.id)!;
    copy.selected = true;
    if (n.parentId && map.has(n.parentId)) copy.parentId = map.get(n.parentId);
    else {
      // Pasted at the level it came from if that block still exists, else at the top.
      if (!(n.parentId && existing.has(n.parentId))) {
        delete copy.parentId;
      }
      copy.position = { x: n.position.x + offset.x, y: n.position.y + offset.y };
      top.push(copy.id);
    }
    return copy;
  });
  const edges = clip.edges.map((e) => {
    const s = map.get(e.source)!;
    const t = map.get(e.target)!;
    return { id: edgeId({ source: s, target: t }), source: s, target: t };
  });
  const deselected = g.nodes.map((n) => (n.selected ? ({ ...n, selected: false } as FlowNode) : n));
  return { graph: { nodes: fitBlocks(sortParentsFirst([...deselected, ...nodes])), edges: [...g.edges, ...edges] }, ids: top };
}

/**
 * Moves a node into a block or out of it (dragged there), keeping its place on screen. Its old
 * neighbours are joined as a delete would join them; moved into a block, it follows the block's
 * last layer (and becomes the block's explicit exit if that layer was); moved out, it starts
 * unconnected. A moved block takes its contents and its own entry/exit edges along.
 */
export function reparent(g: FlowGraph, id: string, parentId: string | undefined): FlowGraph {
  const node = g.nodes.find((n) => n.id === id);
  if (!node || node.parentId === parentId) return g;
  const inside = withDescendants(g.nodes, [id]);
  if (parentId && inside.has(parentId)) return g;
  const abs = absolutePosition(g.nodes, node);
  let position = abs;
  if (parentId) {
    const parent = g.nodes.find((n) => n.id === parentId);
    if (!parent) return g;
    const pAbs = absolutePosition(g.nodes, parent);
    position = { x: Math.max(BLOCK_PAD.x, abs.x - pAbs.x), y: Math.max(BLOCK_PAD.top, abs.y - pAbs.y) };
  }
  const nodes = g.nodes.map((n) => {
    if (n.id !== id) return n;
    const moved = { ...n, position } as FlowNode;
    if (parentId) moved.parentId = parentId;
    else delete moved.parentId;
    return moved;
  });
  // Its edges to the level it leaves go (neighbours joined); a block's own inner edges stay.
  const own = (e: FlowEdge) => (e.source === id && inside.has(e.target)) || (e.target === id && inside.has(e.source));
  const outer = g.edges.filter((e) => !own(e));
  const edges = [...joinAround(outer, new Set([id])), ...g.edges.filter(own)];
  if (parentId) {
    // After the block's last layer: its one sink among the other children.
    const kids = new Set(nodes.filter((n) => n.parentId === parentId && n.id !== id).map((n) => n.id));
    const sinks = [...kids].filter((k) => !edges.some((e) => e.source === k && kids.has(e.target)));
    if (sinks.length === 1) {
      const sink = sinks[0];
      const exit = edges.findIndex((e) => e.source === sink && e.target === parentId);
      if (exit >= 0) edges.splice(exit, 1, makeEdge({ source: id, target: parentId, targetHandle: edges[exit].targetHandle }));
      edges.push(makeEdge({ source: sink, target: id }));
    }
  }
  return { nodes: fitBlocks(sortParentsFirst(nodes)), edges };
}

export { absolutePosition };
