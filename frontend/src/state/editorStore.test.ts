import { beforeEach, describe, expect, it } from 'vitest';
import { smallCnn } from '../graph/fixtures';
import { editor, useEditor } from './editorStore';

const ids = () => useEditor.getState().nodes.map((n) => n.id);
const pairs = () => useEditor.getState().edges.map((e) => `${e.source}>${e.target}`);

beforeEach(() => editor.load(structuredClone(smallCnn)));

describe('editor store', () => {
  it('applies the backend\'s insert_before fix as one undoable step', () => {
    editor.deleteNode('flatten_1');
    editor.connect({ source: 'block_1', target: 'linear_1' });
    editor.applyFix({
      node: 'linear_1',
      field: null,
      message: 'linear_1: Linear works on a vector of features per sample',
      suggestion: 'insert Flatten before linear_1',
      fix: { action: 'insert_before', op: 'Flatten', node: 'linear_1' },
      kind: 'error',
    });
    expect(pairs()).toEqual(expect.arrayContaining(['block_1>flatten_1', 'flatten_1>linear_1']));
    expect(useEditor.getState().nodes.find((n) => n.id === 'flatten_1')!.selected).toBe(true);
    editor.undo();
    expect(ids()).not.toContain('flatten_1');
    expect(pairs()).toContain('block_1>linear_1');
  });

  it('records a whole drag as one undo step and skips selection changes', () => {
    const start = useEditor.getState().nodes.find((n) => n.id === 'relu_1')!.position;
    editor.onNodesChange([{ type: 'select', id: 'relu_1', selected: true }]);
    for (const y of [160, 170, 180]) editor.onNodesChange([{ type: 'position', id: 'relu_1', position: { x: 24, y }, dragging: true }]);
    editor.onNodesChange([{ type: 'position', id: 'relu_1', position: { x: 24, y: 190 }, dragging: false }]);
    expect(useEditor.getState().nodes.find((n) => n.id === 'relu_1')!.position.y).toBe(190);
    expect(useEditor.getState().history.past).toHaveLength(1);
    editor.undo();
    expect(useEditor.getState().nodes.find((n) => n.id === 'relu_1')!.position).toEqual(start);
  });

  it('inherited freezing is what the report says: frozen nodes that are not frozen themselves', () => {
    const node = (id: string, frozen: boolean) => ({ id, op: 'ReLU', status: 'ok' as const, input_shapes: [], output_shape: [8], dtype: 'float32', params: 0, trainable_params: 0, frozen_params: 0, frozen, macs: 0, activations: 0, instances: 1, formula: [], resolved: {} });
    const report = (frozen: boolean) => ({
      format: 'layerlab.report/1' as const,
      valid: true,
      input_shape: [1, 8, 8],
      input_dtype: 'float32',
      output_shape: [10],
      nodes: [node('block_1', frozen), node('relu_1', frozen), node('linear_1', false)],
      totals: { params: 0, trainable_params: 0, frozen_params: 0, macs: 0, activations: 0, memory: null },
      errors: [],
    });
    editor.setReport(report(true));
    expect(useEditor.getState().frozenInherited).toEqual({ relu_1: true }); // block_1 is frozen itself
    editor.setReport(report(false));
    expect(useEditor.getState().frozenInherited).toEqual({});
  });

  it('typing into a field coalesces into one step', () => {
    editor.setParam('conv2d_1', 'out_channels', 1);
    editor.setParam('conv2d_1', 'out_channels', 12);
    editor.setParam('conv2d_1', 'out_channels', 128);
    expect(useEditor.getState().history.past).toHaveLength(1);
    editor.undo();
    expect(useEditor.getState().nodes.find((n) => n.id === 'conv2d_1')!.data.params.out_channels).toBe(8);
  });

  it('keeps a node\'s report object when the next report says the same about it', () => {
    const report = {
      format: 'layerlab.report/1' as const,
      valid: true,
      input_shape: [1, 8, 8],
      input_dtype: 'float32',
      output_shape: [10],
      nodes: [
        { id: 'conv2d_1', op: 'Conv2d', status: 'ok' as const, input_shapes: [[1, 8, 8]], output_shape: [8, 8, 8], dtype: 'float32', params: 80, trainable_params: 80, frozen_params: 0, frozen: false, macs: 1, activations: 1, instances: 1, formula: [], resolved: {} },
      ],
      totals: { params: 80, trainable_params: 80, frozen_params: 0, macs: 1, activations: 1, memory: null },
      errors: [],
    };
    editor.setReport(report);
    const first = useEditor.getState().nodeReports.conv2d_1;
    editor.setReport(structuredClone(report));
    expect(useEditor.getState().nodeReports.conv2d_1).toBe(first);
  });

  it('groups the selection into a block with Ctrl+G semantics and ungroups it back', () => {
    editor.onNodesChange([
      { type: 'select', id: 'flatten_1', selected: true },
      { type: 'select', id: 'linear_1', selected: true },
    ]);
    editor.group();
    expect(ids()).toContain('block_2');
    expect(pairs()).toContain('block_2>output_1');
    editor.ungroup('block_2');
    expect(ids()).not.toContain('block_2');
    expect(pairs()).toContain('linear_1>output_1');
  });

  it('deleting a node in a chain joins its neighbours; one undo brings both back', () => {
    editor.select('flatten_1');
    editor.deleteSelected();
    expect(pairs()).toContain('block_1>linear_1');
    expect(useEditor.getState().history.past).toHaveLength(1);
    editor.undo();
    expect(ids()).toContain('flatten_1');
    expect(pairs()).not.toContain('block_1>linear_1');
    editor.select('flatten_1');
    editor.deleteSelected(false); // Ctrl+Delete: no reconnecting
    expect(pairs()).not.toContain('block_1>linear_1');
  });

  it('one paste, one group and one layout are one undo step each', () => {
    const steps = () => useEditor.getState().history.past.length;
    editor.select('linear_1');
    editor.copy();
    editor.paste();
    expect(ids()).toContain('linear_2');
    expect(steps()).toBe(1);
    editor.onNodesChange([
      { type: 'select', id: 'flatten_1', selected: true },
      { type: 'select', id: 'linear_1', selected: true },
    ]);
    editor.group();
    expect(steps()).toBe(2);
    editor.layout();
    expect(steps()).toBe(3);
    editor.undo();
    editor.undo();
    expect(ids()).not.toContain('block_2');
    expect(ids()).toContain('linear_2');
    editor.undo();
    expect(ids()).not.toContain('linear_2');
  });

  it('puts unconnected problems aside as hints and real ones as errors', () => {
    editor.setReport({
      format: 'layerlab.report/1',
      valid: false,
      input_shape: [1, 8, 8],
      input_dtype: 'float32',
      output_shape: null,
      nodes: [],
      totals: { params: 0, trainable_params: 0, frozen_params: 0, macs: 0, activations: 0, memory: null },
      errors: [
        { node: 'relu_1', message: 'relu_1: nothing feeds this node', kind: 'unconnected' },
        { node: 'linear_1', message: 'linear_1: Linear works on a vector', kind: 'error' },
      ],
    });
    expect(Object.keys(useEditor.getState().nodeErrors)).toEqual(['linear_1']);
    expect(Object.keys(useEditor.getState().nodeHints)).toEqual(['relu_1']);
  });
});
