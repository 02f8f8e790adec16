// Auto-layout with dagre, container by container: each block's children are laid out first, the
// block is sized to hold them, then the level above is laid out with the block as one box.
import dagre from '@dagrejs/dagre';
import { BLOCK_PAD, COLLAPSED_BLOCK, LAYER_SIZE, type FlowGraph, type FlowNode, isBlock } from './kinds';

type Size = { width: number; height: number };

function sizeOf(n: FlowNode): Size {
  if (isBlock(n) && n.data.collapsed) return COLLAPSED_BLOCK;
  // A block's size is ours to set (fitBlocks, the resizer); React Flow's measurement may lag it.
  if (isBlock(n) && n.width && n.height) return { width: n.width, height: n.height };
  const w = n.measured?.width ?? n.width ?? (n.style?.width as number | undefined);
  const h = n.measured?.height ?? n.height ?? (n.style?.height as number | undefined);
  return { width: w ?? LAYER_SIZE.width, height: h ?? LAYER_SIZE.height };
}

/** Lays out every container (or only `onlyParents`) and returns new node objects; edges unchanged. */
export function autoLayout(graph: FlowGraph, direction: 'TB' | 'LR' = 'TB'): FlowGraph {
  const byId = new Map(graph.nodes.map((n) => [n.id, { ...n }] as const));
  const children = new Map<string | undefined, FlowNode[]>();
  for (const n of byId.values()) {
    const key = n.parentId;
    if (!children.has(key)) children.set(key, []);
    children.get(key)!.push(n);
  }
  const sizes = new Map<string, Size>();

  const layoutContainer = (parent: string | undefined): Size => {
    const kids = children.get(parent) ?? [];
    for (const k of kids) {
      if (isBlock(k)) {
        const inner = layoutContainer(k.id);
        if (!k.data.collapsed) {
          const size = {
            width: Math.max(inner.width + 2 * BLOCK_PAD.x, COLLAPSED_BLOCK.width),
            height: inner.height + BLOCK_PAD.top + BLOCK_PAD.bottom,
          };
          sizes.set(k.id, size);
          k.style = { ...k.style, width: size.width, height: size.height };
          k.width = size.width;
          k.height = size.height;
        } else {
          sizes.set(k.id, COLLAPSED_BLOCK);
        }
      } else {
        sizes.set(k.id, sizeOf(k));
      }
    }
    if (kids.length === 0) return { width: 0, height: 0 };
    const g = new dagre.graphlib.Graph();
    g.setGraph({ rankdir: direction, nodesep: 30, ranksep: 36, marginx: 0, marginy: 0 });
    g.setDefaultEdgeLabel(() => ({}));
    const ids = new Set(kids.map((k) => k.id));
    for (const k of kids) g.setNode(k.id, { ...(sizes.get(k.id) ?? sizeOf(k)) });
    for (const e of graph.edges) {
      if (ids.has(e.source) && ids.has(e.target) && e.source !== e.target) g.setEdge(e.source, e.target);
    }
    dagre.layout(g);
    let maxX = 0;
    let maxY = 0;
    const offset = parent === undefined ? { x: 0, y: 0 } : { x: BLOCK_PAD.x, y: BLOCK_PAD.top };
    for (const k of kids) {
      const p = g.node(k.id);
      const s = sizes.get(k.id) ?? sizeOf(k);
      k.position = { x: Math.round(p.x - s.width / 2 + offset.x), y: Math.round(p.y - s.height / 2 + offset.y) };
      maxX = Math.max(maxX, p.x + s.width / 2);
      maxY = Math.max(maxY, p.y + s.height / 2);
    }
    return { width: maxX, height: maxY };
  };

  layoutContainer(undefined);
  return { nodes: graph.nodes.map((n) => byId.get(n.id)!), edges: graph.edges };
}

/** Sizes each (expanded) block to hold its children's current positions, innermost first. */
export function fitBlocks(nodes: FlowNode[]): FlowNode[] {
  const out = nodes.map((n) => ({ ...n }));
  const byId = new Map(out.map((n) => [n.id, n] as const));
  const depth = (n: FlowNode): number => (n.parentId ? 1 + depth(byId.get(n.parentId)!) : 0);
  const blocks = out.filter(isBlock).sort((a, b) => depth(b) - depth(a));
  for (const b of blocks) {
    if (b.data.collapsed) continue;
    const kids = out.filter((n) => n.parentId === b.id);
    if (kids.length === 0) continue;
    let maxX = 0;
    let maxY = 0;
    for (const k of kids) {
      const s = sizeOf(k);
      maxX = Math.max(maxX, k.position.x + s.width);
      maxY = Math.max(maxY, k.position.y + s.height);
    }
    const width = Math.max(maxX + BLOCK_PAD.x, COLLAPSED_BLOCK.width);
    const height = maxY + BLOCK_PAD.bottom;
    b.style = { ...b.style, width, height };
    b.width = width;
    b.height = height;
  }
  return out;
}

/** True when the node's box overlaps a sibling's (same container). */
export function overlapsSibling(nodes: FlowNode[], id: string): boolean {
  const n = nodes.find((m) => m.id === id);
  if (!n) return false;
  const a = { ...n.position, ...sizeOf(n) };
  return nodes.some((m) => {
    if (m.id === id || m.parentId !== n.parentId || m.hidden) return false;
    const b = { ...m.position, ...sizeOf(m) };
    return a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
  });
}

/**
 * After an edit made blocks grow, moves the layers after each grown block (below it, or to its
 * right when the graph runs left to right) by the growth, so the block does not cover them.
 */
export function makeRoom(before: FlowNode[], after: FlowNode[], direction: 'TB' | 'LR' = 'TB'): FlowNode[] {
  const old = new Map(before.filter(isBlock).map((b) => [b.id, sizeOf(b)] as const));
  const lr = direction === 'LR';
  let nodes = after;
  for (let pass = 0; pass < 4; pass++) {
    const byId = new Map(nodes.map((n) => [n.id, n] as const));
    const depth = (n: FlowNode): number => (n.parentId && byId.has(n.parentId) ? 1 + depth(byId.get(n.parentId)!) : 0);
    const grown = nodes
      .filter(isBlock)
      .map((b) => {
        const was = old.get(b.id);
        const now = sizeOf(b);
        const delta = was ? (lr ? now.width - was.width : now.height - was.height) : 0;
        return { b, was, delta };
      })
      .filter((g) => g.was && g.delta > 0)
      .sort((a, b) => depth(b.b) - depth(a.b));
    if (grown.length === 0) return nodes;
    const shifted = new Map<string, { x: number; y: number }>();
    for (const { b, was } of grown) {
      const oldEdge = lr ? b.position.x + was!.width : b.position.y + was!.height;
      const now = sizeOf(b);
      const newEdge = (lr ? b.position.x + now.width : b.position.y + now.height) + 36;
      const after = nodes.filter((n) => n.id !== b.id && n.parentId === b.parentId && (lr ? n.position.x : n.position.y) >= oldEdge - 1);
      if (after.length) {
        // Only as far as needed: a gap already there (a block expanded again) is used first.
        const nearest = Math.min(...after.map((n) => (lr ? n.position.x : n.position.y)));
        const delta = newEdge - nearest;
        if (delta > 0) {
          for (const n of after) {
            const p = shifted.get(n.id) ?? n.position;
            shifted.set(n.id, lr ? { x: p.x + delta, y: p.y } : { x: p.x, y: p.y + delta });
          }
        }
      }
      old.set(b.id, now);
    }
    if (shifted.size === 0) return nodes;
    nodes = fitBlocks(nodes.map((n) => (shifted.has(n.id) ? ({ ...n, position: shifted.get(n.id)! } as FlowNode) : n)));
  }
  return nodes;
}

/** When the node overlaps a sibling in its block, moves it after the block's last layer instead. */
export function placeAfterSiblings(nodes: FlowNode[], id: string, direction: 'TB' | 'LR' = 'TB'): FlowNode[] {
  const node = nodes.find((n) => n.id === id);
  if (!node?.parentId || !overlapsSibling(nodes, id)) return nodes;
  const siblings = nodes.filter((n) => n.parentId === node.parentId && n.id !== id);
  if (!siblings.length) return nodes;
  const lr = direction === 'LR';
  const end = Math.max(...siblings.map((n) => (lr ? n.position.x + sizeOf(n).width : n.position.y + sizeOf(n).height)));
  const position = lr ? { x: end + 40, y: siblings[0].position.y } : { x: siblings[0].position.x, y: end + 36 };
  return fitBlocks(nodes.map((n) => (n.id === id ? ({ ...n, position } as FlowNode) : n)));
}
