import { describe, expect, it } from 'vitest';
import { graphToFlow } from './convert';
import {
  connect,
  connectionProblem,
  copySelection,
  groupIntoBlock,
  insertBefore,
  paste,
  removeNodes,
  reparent,
  setCollapsed,
  setParam,
  toggleFrozen,
  ungroup,
} from './edit';
import { smallCnn } from './fixtures';
import { nextId, opStem } from './ids';
import type { FlowGraph } from './kinds';

const flow = (): FlowGraph => graphToFlow(smallCnn);
const pairs = (g: FlowGraph) => g.edges.map((e) => `${e.source}>${e.target}`);

describe('ids', () => {
  it('makes snake-case stems that are Python identifiers', () => {
    expect(opStem('Conv2d')).toBe('conv2d');
    expect(opStem('BatchNorm2d')).toBe('batch_norm2d');
    expect(opStem('ReLU')).toBe('relu');
    expect(opStem('LeakyReLU')).toBe('leaky_relu');
    expect(opStem('PReLU')).toBe('prelu');
    expect(opStem('LogSoftmax')).toBe('log_softmax');
    expect(opStem('MaxPool2d')).toBe('max_pool2d');
    expect(opStem('ConvTranspose2d')).toBe('conv_transpose2d');
  });
  it('takes one more than the highest suffix', () => {
    expect(nextId('Conv2d', ['conv2d_1', 'conv2d_7', 'relu_9'])).toBe('conv2d_8');
    expect(nextId('ReLU', [])).toBe('relu_1');
  });
});

describe('insertBefore (the Flatten fix)', () => {
  it('rewires every edge into the target through the new node', () => {
    const g = removeNodes(flow(), ['flatten_1']);
    const wired = connect(g, { source: 'block_1', target: 'linear_1' });
    const { graph, id } = insertBefore(wired, 'linear_1', 'Flatten');
    expect(id).toBe('flatten_1');
    expect(pairs(graph)).toContain('block_1>flatten_1');
    expect(pairs(graph)).toContain('flatten_1>linear_1');
    expect(pairs(graph)).not.toContain('block_1>linear_1');
    expect(graph.nodes.find((n) => n.id === id)!.data.op).toBe('Flatten');
  });
  it('places the new node inside the same block as the target', () => {
    const { graph, id } = insertBefore(flow(), 'relu_1', 'Identity');
    expect(graph.nodes.find((n) => n.id === id)!.parentId).toBe('block_1');
    expect(pairs(graph)).toEqual(expect.arrayContaining(['conv2d_2>identity_1', 'identity_1>relu_1']));
  });
});

describe('removeNodes', () => {
  it('removes a block with its children and every edge touching them', () => {
    const g = removeNodes(flow(), ['block_1']);
    expect(g.nodes.map((n) => n.id)).not.toContain('conv2d_2');
    expect(pairs(g)).toEqual(['input_1>conv2d_1', 'flatten_1>linear_1', 'linear_1>output_1']);
  });
  it('joins the neighbours of a node in a chain when asked to reconnect', () => {
    const g = removeNodes(flow(), ['flatten_1'], { reconnect: true });
    expect(pairs(g)).toContain('block_1>linear_1');
    expect(pairs(removeNodes(flow(), ['flatten_1']))).not.toContain('block_1>linear_1');
  });
  it('joins across a run of removed chain nodes, and keeps block handles', () => {
    const g = removeNodes(flow(), ['flatten_1', 'linear_1'], { reconnect: true });
    expect(pairs(g)).toContain('block_1>output_1');
    const withEntry = connect(flow(), { source: 'block_1', sourceHandle: 'inner-in', target: 'conv2d_2' });
    const inner = removeNodes(withEntry, ['conv2d_2'], { reconnect: true });
    const e = inner.edges.find((x) => x.target === 'relu_1')!;
    expect(e.source).toBe('block_1');
    expect(e.sourceHandle).toBe('inner-in');
  });
  it('does not join around a node with several inputs or outputs', () => {
    const branched = connect(flow(), { source: 'conv2d_1', target: 'flatten_1' });
    const g = removeNodes(branched, ['conv2d_1'], { reconnect: true });
    expect(pairs(g).filter((p) => p.startsWith('input_1>'))).toEqual([]);
  });
});

describe('connect', () => {
  it('ignores self-loops and duplicates', () => {
    const g = flow();
    expect(connect(g, { source: 'relu_1', target: 'relu_1' })).toBe(g);
    expect(connect(g, { source: 'input_1', target: 'conv2d_1' })).toBe(g);
    expect(connect(g, { source: 'input_1', target: 'flatten_1' }).edges).toHaveLength(g.edges.length + 1);
  });
});

describe('groupIntoBlock / ungroup', () => {
  it('groups a chain: outside edges move to the block, inside edges stay', () => {
    const r = groupIntoBlock(flow(), ['flatten_1', 'linear_1']);
    expect(r.blockId).toBe('block_2');
    const g = r.graph;
    expect(pairs(g)).toEqual(['input_1>conv2d_1', 'conv2d_1>block_1', 'conv2d_2>relu_1', 'block_1>block_2', 'flatten_1>linear_1', 'block_2>output_1']);
    const kids = g.nodes.filter((n) => n.parentId === 'block_2').map((n) => n.id);
    expect(kids).toEqual(['flatten_1', 'linear_1']);
    const ids = g.nodes.map((n) => n.id);
    expect(ids.indexOf('block_2')).toBeLessThan(ids.indexOf('flatten_1'));
  });
  it('refuses nodes from different containers and Input/Output', () => {
    expect(groupIntoBlock(flow(), ['relu_1', 'flatten_1']).blockId).toBeNull();
    expect(groupIntoBlock(flow(), ['input_1', 'conv2d_1']).blockId).toBeNull();
  });
  it('ungroup restores the original wiring', () => {
    const grouped = groupIntoBlock(flow(), ['flatten_1', 'linear_1']).graph;
    const g = ungroup(grouped, 'block_2');
    expect(pairs(g).sort()).toEqual(pairs(flow()).sort());
    const lin = g.nodes.find((n) => n.id === 'linear_1')!;
    expect(lin.parentId).toBeUndefined();
    expect(lin.position).toEqual(flow().nodes.find((n) => n.id === 'linear_1')!.position);
  });
});

describe('freeze and collapse', () => {
  it('toggles a node\'s own freezing', () => {
    expect(toggleFrozen(flow(), 'block_1').nodes.find((n) => n.id === 'block_1')!.data.frozen).toBe(false);
  });
  it('collapse hides children; expand shows them', () => {
    const c = setCollapsed(flow(), 'block_1', true);
    expect(c.nodes.filter((n) => n.hidden).map((n) => n.id)).toEqual(['conv2d_2', 'relu_1']);
    const block = (g: FlowGraph) => g.nodes.find((n) => n.id === 'block_1')!;
    expect(block(c).height).toBe(84);
    const e = setCollapsed(c, 'block_1', false);
    expect(e.nodes.filter((n) => n.hidden)).toEqual([]);
    expect(block(e).height).toBe(block(flow()).height);
  });
});

describe('setParam', () => {
  it('sets and removes a param (removed = the backend default)', () => {
    const g = setParam(flow(), 'conv2d_1', 'kernel_size', [3, 5]);
    expect(g.nodes.find((n) => n.id === 'conv2d_1')!.data.params).toEqual({ out_channels: 8, padding: 1, kernel_size: [3, 5] });
    const h = setParam(g, 'conv2d_1', 'padding', undefined);
    expect(h.nodes.find((n) => n.id === 'conv2d_1')!.data.params).toEqual({ out_channels: 8, kernel_size: [3, 5] });
  });
});

describe('copy / paste', () => {
  it('pastes a block with its children under fresh ids and internal edges only', () => {
    const g = flow();
    const clip = copySelection(g, ['block_1']);
    expect(clip.nodes.map((n) => n.id)).toEqual(['block_1', 'conv2d_2', 'relu_1']);
    const { graph, ids } = paste(g, clip);
    expect(ids).toEqual(['block_2']);
    const kids = graph.nodes.filter((n) => n.parentId === 'block_2').map((n) => n.id);
    expect(kids).toEqual(['conv2d_3', 'relu_2']);
    expect(pairs(graph)).toContain('conv2d_3>relu_2');
    expect(graph.edges).toHaveLength(g.edges.length + 1);
  });
});

describe('reparent', () => {
  it('moves a node into a block after its last layer; the old neighbours are joined', () => {
    const g = reparent(flow(), 'flatten_1', 'block_1');
    const f = g.nodes.find((n) => n.id === 'flatten_1')!;
    expect(f.parentId).toBe('block_1');
    expect(pairs(g)).toEqual(expect.arrayContaining(['relu_1>flatten_1', 'block_1>linear_1']));
    expect(pairs(g)).not.toContain('block_1>flatten_1');
    expect(pairs(g)).not.toContain('flatten_1>linear_1');
  });
  it('takes over the explicit exit edge of the layer it follows', () => {
    const withExit = connect(flow(), { source: 'relu_1', target: 'block_1', targetHandle: 'inner-out' });
    const g = reparent(withExit, 'flatten_1', 'block_1');
    expect(g.edges.find((e) => e.source === 'flatten_1' && e.target === 'block_1')?.targetHandle).toBe('inner-out');
    expect(pairs(g)).not.toContain('relu_1>block_1');
  });
  it('moves a node out of a block: the layers around it are joined, it starts unconnected', () => {
    const inner = connect(flow(), { source: 'block_1', sourceHandle: 'inner-in', target: 'conv2d_2' });
    const g = reparent(inner, 'conv2d_2', undefined);
    expect(g.nodes.find((n) => n.id === 'conv2d_2')!.parentId).toBeUndefined();
    expect(g.edges.find((e) => e.target === 'relu_1')?.source).toBe('block_1');
    expect(g.edges.some((e) => e.source === 'conv2d_2' || e.target === 'conv2d_2')).toBe(false);
  });
  it('refuses to move a block into itself or its own contents', () => {
    const g = flow();
    expect(reparent(g, 'block_1', 'block_1')).toBe(g);
  });
});

describe('overlapsSibling', () => {
  it('detects a block grown over its neighbour', async () => {
    const { overlapsSibling } = await import('./layout');
    const r = groupIntoBlock(flow(), ['conv2d_1']);
    // conv2d_1 sits 100 px under input_1; the block's 56 px header reaches over it.
    expect(overlapsSibling(r.graph.nodes, r.blockId!)).toBe(true);
    expect(overlapsSibling(flow().nodes, 'linear_1')).toBe(false);
  });
});

describe('makeRoom', () => {
  it('moves what lies below a block down by as much as the block grew', async () => {
    const { makeRoom, fitBlocks } = await import('./layout');
    const g = flow();
    const block = g.nodes.find((n) => n.id === 'block_1')!;
    // Move relu_1 further down inside the block: the block grows by 100 px.
    const moved = fitBlocks(g.nodes.map((n) => (n.id === 'relu_1' ? { ...n, position: { x: 24, y: 250 } } : n)));
    const grownBy = moved.find((n) => n.id === 'block_1')!.height! - block.height!;
    expect(grownBy).toBe(100);
    const out = makeRoom(g.nodes, moved);
    const y = (nodes: typeof out, id: string) => nodes.find((n) => n.id === id)!.position.y;
    // The block now ends at 200 + 342; flatten_1 goes 36 px below that, the rest follow.
    expect(y(out, 'flatten_1')).toBe(200 + 342 + 36);
    expect(y(out, 'output_1') - y(out, 'flatten_1')).toBe(y(g.nodes, 'output_1') - y(g.nodes, 'flatten_1'));
    // A gap that is already large enough is left alone.
    const spaced = g.nodes.map((n) => (n.parentId || n.id === 'block_1' || n.position.y < 500 ? n : { ...n, position: { ...n.position, y: n.position.y + 300 } }));
    const spacedMoved = fitBlocks(spaced.map((n) => (n.id === 'relu_1' ? { ...n, position: { x: 24, y: 250 } } : n)));
    expect(y(makeRoom(spaced, spacedMoved), 'flatten_1')).toBe(800);
    expect(y(out, 'conv2d_1')).toBe(y(g.nodes, 'conv2d_1'));
  });
});

describe('connectionProblem (checked while drawing)', () => {
  it('refuses an edge across a block boundary and names both sides', () => {
    const why = connectionProblem(flow(), { source: 'relu_1', target: 'linear_1' });
    expect(why).toMatch(/relu_1 is inside block_1 and linear_1 is at the top level/);
    expect(why).toMatch(/cannot cross a block's boundary/);
  });
  it("allows a block's own entry and exit edges and sibling edges", () => {
    expect(connectionProblem(flow(), { source: 'block_1', target: 'conv2d_2' })).toBeNull();
    expect(connectionProblem(flow(), { source: 'relu_1', target: 'block_1' })).toBeNull();
    expect(connectionProblem(flow(), { source: 'conv2d_1', target: 'flatten_1' })).toBeNull();
  });
  it('refuses an edge that closes a cycle', () => {
    expect(connectionProblem(flow(), { source: 'linear_1', target: 'conv2d_1' })).toMatch(/conv2d_1 already leads to linear_1: this edge would make a cycle/);
    expect(connectionProblem(flow(), { source: 'relu_1', target: 'relu_1' })).toMatch(/cannot feed itself/);
  });
});
