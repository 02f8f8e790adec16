// Small graphs for unit tests.
import type { GraphDoc } from '../api/types';

export const smallCnn: GraphDoc = {
  format: 'layerlab.graph/1',
  name: 'small_cnn',
  nodes: [
    { id: 'input_1', op: 'Input', params: { shape: [1, 8, 8] }, position: { x: 0, y: 0 } },
    { id: 'conv2d_1', op: 'Conv2d', params: { out_channels: 8, padding: 1 }, position: { x: 0, y: 100 } },
    { id: 'block_1', op: 'Block', params: { residual: true }, frozen: true, position: { x: 0, y: 200 } },
    { id: 'conv2d_2', op: 'Conv2d', parent: 'block_1', params: { out_channels: 8, padding: 1 }, position: { x: 24, y: 56 }, label: 'inner' },
    { id: 'relu_1', op: 'ReLU', parent: 'block_1', params: {}, position: { x: 24, y: 150 } },
    { id: 'flatten_1', op: 'Flatten', params: {}, position: { x: 0, y: 500 } },
    { id: 'linear_1', op: 'Linear', params: { out_features: 10 }, init: 'kaiming_normal', position: { x: 0, y: 600 } },
    { id: 'output_1', op: 'Output', params: {}, position: { x: 0, y: 700 } },
  ],
  edges: [
    { id: 'a', source: 'input_1', target: 'conv2d_1' },
    { id: 'b', source: 'conv2d_1', target: 'block_1' },
    { id: 'c', source: 'conv2d_2', target: 'relu_1' },
    { id: 'd', source: 'block_1', target: 'flatten_1' },
    { id: 'e', source: 'flatten_1', target: 'linear_1' },
    { id: 'f', source: 'linear_1', target: 'output_1' },
  ],
};
