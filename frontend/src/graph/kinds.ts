// The editor's node kinds: a typed union mirroring the backend's (Block vs. every other op).
import type { Node, Edge } from '@xyflow/react';
import type { InitSpec, InitScheme, OpName } from '../api/types';

export type LayerOp = Exclude<OpName, 'Block'>;

interface NodeFields {
  params: Record<string, unknown>;
  label?: string;
  name?: string;
  frozen: boolean;
  init?: InitSpec | InitScheme;
}

export interface LayerData extends NodeFields {
  [key: string]: unknown;
  op: LayerOp;
}

export interface BlockData extends NodeFields {
  [key: string]: unknown;
  op: 'Block';
  collapsed: boolean;
}

export type LayerFlowNode = Node<LayerData, 'layer'>;
export type BlockFlowNode = Node<BlockData, 'block'>;
export type FlowNode = LayerFlowNode | BlockFlowNode;
export type FlowEdge = Edge;

export interface FlowGraph {
  nodes: FlowNode[];
  edges: FlowEdge[];
}

export const isBlock = (n: FlowNode): n is BlockFlowNode => n.type === 'block';

/** Default footprint of a layer node before React Flow has measured it. */
export const LAYER_SIZE = { width: 190, height: 72 };
export const BLOCK_PAD = { x: 24, top: 56, bottom: 20 };
export const COLLAPSED_BLOCK = { width: 220, height: 84 };

/** Which way data flows on the canvas: top to bottom or left to right (an editor preference). */
export type Direction = 'TB' | 'LR';

/** Block handles on the inside of the frame: block → child (entry) and child → block (exit). */
export const INNER_IN = 'inner-in';
export const INNER_OUT = 'inner-out';
