import { describe, expect, it } from 'vitest';
import { analysisKey, flowToGraph, graphToFlow, inferDirection, parseGraphJson, sortParentsFirst } from './convert';
import { smallCnn } from './fixtures';
import type { GraphDoc } from '../api/types';

describe('graphToFlow / flowToGraph', () => {
  it('round-trips a graph with a block exactly', () => {
    const flow = graphToFlow(smallCnn);
    const back = flowToGraph(flow, smallCnn.name);
    expect(back).toEqual(smallCnn);
  });

  it('maps blocks to group nodes and children to parentId (free to be dragged out)', () => {
    const { nodes } = graphToFlow(smallCnn);
    const block = nodes.find((n) => n.id === 'block_1')!;
    const child = nodes.find((n) => n.id === 'conv2d_2')!;
    expect(block.type).toBe('block');
    expect(block.data.frozen).toBe(true);
    expect(child.type).toBe('layer');
    expect(child.parentId).toBe('block_1');
    expect(child.extent).toBeUndefined();
    expect(child.data.label).toBe('inner');
    // the block is sized to hold its children
    expect(block.width).toBeGreaterThan(24 + 150);
    expect(block.height).toBeGreaterThan(150);
  });

  it('puts parents before children even when the file lists a child first', () => {
    const doc: GraphDoc = { ...smallCnn, nodes: [smallCnn.nodes[3], ...smallCnn.nodes.filter((_, i) => i !== 3)] };
    const ids = graphToFlow(doc).nodes.map((n) => n.id);
    expect(ids.indexOf('block_1')).toBeLessThan(ids.indexOf('conv2d_2'));
  });

  it('keeps edge order (Concat order is edge order)', () => {
    const doc: GraphDoc = {
      format: 'layerlab.graph/1',
      name: 'cat',
      nodes: [
        { id: 'i', op: 'Input', params: { shape: [4] } },
        { id: 'a', op: 'Linear', params: {} },
        { id: 'b', op: 'Linear', params: {} },
        { id: 'c', op: 'Concat', params: {} },
        { id: 'o', op: 'Output', params: {} },
      ],
      edges: [
        { source: 'i', target: 'a' },
        { source: 'i', target: 'b' },
        { source: 'b', target: 'c' },
        { source: 'a', target: 'c' },
        { source: 'c', target: 'o' },
      ],
    };
    const back = flowToGraph(graphToFlow(doc));
    expect(back.edges.map((e) => `${e.source}>${e.target}`)).toEqual(['i>a', 'i>b', 'b>c', 'a>c', 'c>o']);
    expect(new Set(back.edges.map((e) => e.id)).size).toBe(5);
  });

  it('lays out a graph without positions top to bottom, children inside their block', () => {
    const doc: GraphDoc = { ...smallCnn, nodes: smallCnn.nodes.map(({ position: _p, ...n }) => n) };
    const { nodes } = graphToFlow(doc);
    const y = (id: string) => nodes.find((n) => n.id === id)!.position.y;
    expect(y('input_1')).toBeLessThan(y('conv2d_1'));
    expect(y('conv2d_1')).toBeLessThan(y('block_1'));
    expect(y('block_1')).toBeLessThan(y('flatten_1'));
    expect(y('conv2d_2')).toBeLessThan(y('relu_1'));
    expect(y('conv2d_2')).toBeGreaterThan(0); // relative to the block, below its header
  });

  it('hides the children of a collapsed block', () => {
    const { nodes } = graphToFlow(smallCnn, { collapsed: ['block_1'] });
    expect(nodes.find((n) => n.id === 'relu_1')!.hidden).toBe(true);
    expect(nodes.find((n) => n.id === 'block_1')!.hidden).toBeUndefined();
  });

  it('leaves optional fields out instead of writing nulls', () => {
    const back = flowToGraph(graphToFlow(smallCnn));
    const relu = back.nodes.find((n) => n.id === 'relu_1')!;
    expect(Object.keys(relu).sort()).toEqual(['id', 'op', 'params', 'parent', 'position']);
  });
});

describe('analysisKey', () => {
  it('ignores positions but not params or edges', () => {
    const moved: GraphDoc = { ...smallCnn, nodes: smallCnn.nodes.map((n) => ({ ...n, position: { x: 5, y: 5 } })) };
    expect(analysisKey(moved)).toBe(analysisKey(smallCnn));
    const changed: GraphDoc = { ...smallCnn, nodes: smallCnn.nodes.map((n) => (n.id === 'conv2d_1' ? { ...n, params: { out_channels: 4 } } : n)) };
    expect(analysisKey(changed)).not.toBe(analysisKey(smallCnn));
    expect(analysisKey({ ...smallCnn, edges: smallCnn.edges.slice(1) })).not.toBe(analysisKey(smallCnn));
  });
});

describe('parseGraphJson', () => {
  it('rejects other formats and non-graphs', () => {
    expect(() => parseGraphJson('{"format":"other/2","nodes":[]}')).toThrow(/unsupported format/);
    expect(() => parseGraphJson('{"a":1}')).toThrow(/no "nodes"/);
    expect(parseGraphJson(JSON.stringify(smallCnn)).nodes).toHaveLength(8);
  });
});

describe('sortParentsFirst', () => {
  it('orders nested blocks outer to inner', () => {
    const out = sortParentsFirst([
      { id: 'c', parentId: 'b' },
      { id: 'b', parentId: 'a' },
      { id: 'a' },
    ]);
    expect(out.map((n) => n.id)).toEqual(['a', 'b', 'c']);
  });
});

describe('entry and exit edges of a block', () => {
  const doc: GraphDoc = {
    ...smallCnn,
    edges: [...smallCnn.edges, { id: 'in', source: 'block_1', target: 'conv2d_2' }, { id: 'out', source: 'relu_1', target: 'block_1' }],
  };
  it('draw from the block\'s inner handles and round-trip without them', () => {
    const flow = graphToFlow(doc);
    expect(flow.edges.find((e) => e.id === 'in')!.sourceHandle).toBe('inner-in');
    expect(flow.edges.find((e) => e.id === 'out')!.targetHandle).toBe('inner-out');
    expect(flow.edges.find((e) => e.id === 'b')!.sourceHandle).toBeUndefined();
    expect(flowToGraph(flow, doc.name)).toEqual(doc);
  });
});

describe('inferDirection', () => {
  it('reads the direction from saved positions', () => {
    expect(inferDirection(smallCnn)).toBe('TB');
    const lr: GraphDoc = { ...smallCnn, nodes: smallCnn.nodes.map((n) => ({ ...n, position: { x: n.position!.y, y: n.position!.x } })) };
    expect(inferDirection(lr)).toBe('LR');
  });
});
