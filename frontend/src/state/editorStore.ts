// The editor's store: the graph (with undo history), the catalog and the backend's report.
// Components read it through narrow selectors; training lives in its own store.
import { applyEdgeChanges, applyNodeChanges, type EdgeChange, type NodeChange } from '@xyflow/react';
import { create } from 'zustand';
import type { ReportOptions } from '../api/client';
import type { Catalog, GraphDoc, GraphError, NodeReport, OpName, OpSpec, Report } from '../api/types';
import { collapsedBlocks, flowToGraph, graphToFlow, inferDirection } from '../graph/convert';
import {
  type Clipboard,
  addNode,
  connect,
  copySelection,
  groupIntoBlock,
  insertBefore,
  makeNode,
  paste,
  removeEdges,
  removeNodes,
  reparent,
  setCollapsed,
  setParam,
  toggleFrozen,
  ungroup,
  updateNodeData,
} from '../graph/edit';
import { nextId } from '../graph/ids';
import type { Direction, FlowEdge, FlowGraph, FlowNode } from '../graph/kinds';
import { autoLayout, fitBlocks, makeRoom, overlapsSibling, placeAfterSiblings } from '../graph/layout';
import { type History, canRedo, canUndo, createHistory, push, redo, replace, undo } from './history';

export interface EditorState {
  catalog: Catalog | null;
  ops: Record<string, OpSpec>;
  name: string;
  direction: Direction;
  history: History<FlowGraph>;
  nodes: FlowNode[];
  edges: FlowEdge[];
  /** Nodes the report calls frozen though they are not frozen themselves: a block around them is. */
  frozenInherited: Record<string, true>;
  report: Report | null;
  reportPending: boolean;
  reportFailed: string | null;
  nodeReports: Record<string, NodeReport>;
  /** Real problems (shapes, parameters), by node: drawn red. */
  nodeErrors: Record<string, GraphError[]>;
  /** Wiring not finished yet (the report's kind "unconnected"), by node: a subtle hint. */
  nodeHints: Record<string, GraphError[]>;
  graphErrors: GraphError[];
  clipboard: Clipboard | null;
  notice: string | null;
  /** Bumps when a whole new graph is loaded, so the canvas can fit the view. */
  loadCount: number;
  dragStart: FlowGraph | null;
  /** Batch size and optimizer the report's memory estimate assumes (from the training form). */
  reportOptions: ReportOptions;
}

const empty: FlowGraph = { nodes: [], edges: [] };

export const useEditor = create<EditorState>()(() => ({
  catalog: null,
  ops: {},
  name: 'model',
  direction: 'TB',
  history: createHistory(empty),
  nodes: [],
  edges: [],
  frozenInherited: {},
  report: null,
  reportPending: false,
  reportFailed: null,
  nodeReports: {},
  nodeErrors: {},
  nodeHints: {},
  graphErrors: [],
  clipboard: null,
  notice: null,
  loadCount: 0,
  dragStart: null,
  reportOptions: {},
}));

const get = useEditor.getState;
const set = useEditor.setState;

function show(history: History<FlowGraph>) {
  const { nodes, edges } = history.present;
  return { history, nodes, edges };
}

/** Records an edit as an undo step. */
export function commit(next: FlowGraph, coalesce?: string): void {
  const before = get().history.present;
  const nodes = makeRoom(before.nodes, next.nodes, get().direction);
  const roomy = nodes === next.nodes ? next : { nodes, edges: next.edges };
  set(show(push(get().history, roomy, { coalesce })));
}

/** Changes the present without an undo step (selection, measuring, dragging in progress). */
function quiet(next: FlowGraph): void {
  const history = replace(get().history, next);
  set({ history, nodes: next.nodes, edges: next.edges });
}

const graph = (): FlowGraph => get().history.present;

export const editor = {
  setCatalog(catalog: Catalog) {
    set({ catalog, ops: Object.fromEntries(catalog.ops.map((o) => [o.op, o])) });
  },

  currentGraph(): GraphDoc {
    return flowToGraph(graph(), get().name);
  },

  load(doc: GraphDoc, opts: { keepHistory?: boolean } = {}) {
    const direction = doc.nodes.every((n) => n.position) ? inferDirection(doc) : get().direction;
    const flow = graphToFlow(doc, { direction });
    const history = opts.keepHistory ? push(get().history, flow) : createHistory(flow);
    set({ ...show(history), name: doc.name || 'model', direction, loadCount: get().loadCount + 1 });
  },

  /** Flips the flow direction (handles move) and lays the graph out again. */
  toggleDirection() {
    const direction: Direction = get().direction === 'TB' ? 'LR' : 'TB';
    set({ direction });
    commit(autoLayout(graph(), direction));
    set({ loadCount: get().loadCount + 1 });
  },

  rename(name: string) {
    set({ name });
  },

  onNodesChange(changes: NodeChange<FlowNode>[]) {
    const before = graph();
    const next = { nodes: applyNodeChanges(changes, before.nodes), edges: before.edges };
    const dragging = changes.some((c) => c.type === 'position' && c.dragging);
    const dropped = changes.some((c) => c.type === 'position' && c.dragging === false);
    if (dragging && !get().dragStart) set({ dragStart: before });
    if (dropped) {
      const start = get().dragStart ?? before;
      set({ dragStart: null });
      const fitted = { nodes: fitBlocks(next.nodes), edges: next.edges };
      const h = push(replace(get().history, start), fitted);
      set(show(h));
      return;
    }
    quiet(next);
  },

  onEdgesChange(changes: EdgeChange<FlowEdge>[]) {
    const removing = changes.filter((c) => c.type === 'remove');
    const before = graph();
    const next = { nodes: before.nodes, edges: applyEdgeChanges(changes, before.edges) };
    if (removing.length) commit(next);
    else quiet(next);
  },

  connect(c: { source: string; target: string; sourceHandle?: string | null; targetHandle?: string | null }) {
    commit(connect(graph(), c));
  },

  addNode(op: OpName, position: { x: number; y: number }, parentId?: string): string {
    const g = graph();
    const id = nextId(op, g.nodes.map((n) => n.id));
    const params: Record<string, unknown> = op === 'Input' ? { shape: [1, 8, 8] } : {};
    const node = makeNode(op, id, position, params, parentId);
    const deselected = g.nodes.map((n) => (n.selected ? ({ ...n, selected: false } as FlowNode) : n));
    node.selected = true;
    // Dropped into a block on top of a layer: placed after the block's last layer instead.
    const added = addNode({ nodes: deselected, edges: g.edges }, node);
    commit({ nodes: placeAfterSiblings(added.nodes, id, get().direction), edges: added.edges });
    return id;
  },

  /** Deletes the selection; a node in a chain (one input, one output) has its neighbours joined. */
  deleteSelected(reconnect = true) {
    const g = graph();
    const nodeIds = g.nodes.filter((n) => n.selected).map((n) => n.id);
    const edgeIds = g.edges.filter((e) => e.selected).map((e) => e.id);
    if (!nodeIds.length && !edgeIds.length) return;
    commit(removeNodes(removeEdges(g, edgeIds), nodeIds, { reconnect }));
  },

  deleteNode(id: string, reconnect = true) {
    commit(removeNodes(graph(), [id], { reconnect }));
  },

  setParam(id: string, key: string, value: unknown) {
    commit(setParam(graph(), id, key, value), `param:${id}:${key}`);
  },

  setLabel(id: string, label: string) {
    commit(updateNodeData(graph(), id, { label: label || undefined }), `label:${id}`);
  },

  setInit(id: string, init: FlowNode['data']['init'] | undefined) {
    commit(updateNodeData(graph(), id, { init }));
  },

  toggleFrozen(id: string) {
    commit(toggleFrozen(graph(), id));
  },

  applyFix(error: GraphError) {
    const fix = error.fix as { action?: string; op?: string; node?: string } | null | undefined;
    const target = fix?.node ?? error.node;
    if (!fix || fix.action !== 'insert_before' || !fix.op || !target) return;
    const { graph: next, id } = insertBefore(graph(), target, fix.op as OpName);
    if (id) commit({ nodes: next.nodes.map((n) => ({ ...n, selected: n.id === id }) as FlowNode), edges: next.edges });
  },

  group() {
    const ids = graph().nodes.filter((n) => n.selected).map((n) => n.id);
    const r = groupIntoBlock(graph(), ids);
    if (r.blockId === null) {
      set({ notice: `Cannot group: ${r.reason}` });
      return;
    }
    const blockId = r.blockId;
    // The new block is larger than its contents; if it now covers a neighbour, lay out again.
    const grouped = overlapsSibling(r.graph.nodes, blockId) ? autoLayout(r.graph, get().direction) : r.graph;
    commit({ nodes: grouped.nodes.map((n) => ({ ...n, selected: n.id === blockId }) as FlowNode), edges: grouped.edges });
  },

  ungroup(blockId?: string) {
    const id = blockId ?? graph().nodes.find((n) => n.selected && n.type === 'block')?.id;
    if (id) commit(ungroup(graph(), id));
  },

  setCollapsed(blockId: string, collapsed: boolean) {
    commit(setCollapsed(graph(), blockId, collapsed));
  },

  /** Moves a node into a block or out of it; after a drag, part of the drag's undo step. */
  reparent(id: string, parentId: string | undefined, opts: { afterDrag?: boolean } = {}) {
    const before = graph();
    const moved = reparent(before, id, parentId);
    if (moved === before) return;
    // Dropped onto a layer inside: placed after the block's last layer; what follows makes room.
    const placed = placeAfterSiblings(moved.nodes, id, get().direction);
    const next = { nodes: makeRoom(before.nodes, placed, get().direction), edges: moved.edges };
    if (opts.afterDrag && get().history.past.length) set(show(replace(get().history, next)));
    else commit(next);
  },

  copy() {
    const ids = graph().nodes.filter((n) => n.selected).map((n) => n.id);
    if (ids.length) set({ clipboard: copySelection(graph(), ids) });
  },

  cut() {
    editor.copy();
    editor.deleteSelected();
  },

  paste() {
    const clip = get().clipboard;
    if (!clip) return;
    commit(paste(graph(), clip).graph);
    // A second paste lands further along.
    set({ clipboard: { nodes: clip.nodes.map((n) => ({ ...n, position: { x: n.position.x + 40, y: n.position.y + 40 } })), edges: clip.edges } });
  },

  duplicate() {
    editor.copy();
    editor.paste();
  },

  selectAll() {
    const g = graph();
    quiet({ nodes: g.nodes.map((n) => ({ ...n, selected: !n.hidden }) as FlowNode), edges: g.edges });
  },

  select(id: string | null) {
    const g = graph();
    quiet({ nodes: g.nodes.map((n) => (Boolean(n.selected) === (n.id === id) ? n : ({ ...n, selected: n.id === id } as FlowNode))), edges: g.edges });
  },

  layout() {
    commit(autoLayout(graph(), get().direction));
    set({ loadCount: get().loadCount + 1 });
  },

  undo() {
    set(show(undo(get().history)));
  },
  redo() {
    set(show(redo(get().history)));
  },
  canUndo: () => canUndo(get().history),
  canRedo: () => canRedo(get().history),

  setReportOptions(opts: ReportOptions) {
    const cur = get().reportOptions;
    if (cur.batch_size !== opts.batch_size || cur.optimizer !== opts.optimizer) set({ reportOptions: opts });
  },

  setReportPending(pending: boolean) {
    set({ reportPending: pending });
  },

  setReportFailed(message: string | null) {
    set({ reportFailed: message, reportPending: false });
  },

  /** Applies a report, keeping each node's previous object when it did not change (no re-render). */
  setReport(report: Report) {
    const prev = get().nodeReports;
    const nodeReports: Record<string, NodeReport> = {};
    for (const n of report.nodes) {
      const old = prev[n.id];
      nodeReports[n.id] = old && JSON.stringify(old) === JSON.stringify(n) ? old : n;
    }
    const grouped: Record<string, GraphError[]> = {};
    const hinted: Record<string, GraphError[]> = {};
    const graphErrors: GraphError[] = [];
    for (const e of report.errors) {
      if (!e.node) graphErrors.push(e);
      else if (e.kind === 'unconnected') (hinted[e.node] ??= []).push(e);
      else (grouped[e.node] ??= []).push(e);
    }
    // Unchanged lists keep their object, so only the nodes whose problems changed re-render.
    const keep = (prev: Record<string, GraphError[]>, next: Record<string, GraphError[]>) => {
      const out: Record<string, GraphError[]> = {};
      for (const [id, list] of Object.entries(next)) {
        const old = prev[id];
        out[id] = old && JSON.stringify(old) === JSON.stringify(list) ? old : list;
      }
      return out;
    };
    const nodeErrors = keep(get().nodeErrors, grouped);
    const nodeHints = keep(get().nodeHints, hinted);
    // Inherited freezing as the backend decided it, not worked out again here.
    const own = new Set(get().nodes.filter((n) => n.data.frozen).map((n) => n.id));
    const byBlock: Record<string, true> = {};
    for (const n of report.nodes) if (n.frozen && !own.has(n.id)) byBlock[n.id] = true;
    const oldInherited = get().frozenInherited;
    const frozenInherited = JSON.stringify(oldInherited) === JSON.stringify(byBlock) ? oldInherited : byBlock;
    set({ report, nodeReports, nodeErrors, nodeHints, graphErrors, frozenInherited, reportPending: false, reportFailed: null });
  },

  dismissNotice() {
    set({ notice: null });
  },
  notify(notice: string) {
    set({ notice });
  },

  collapsed: () => collapsedBlocks(graph().nodes),
};

export const selectedIds = (s: EditorState) => s.nodes.filter((n) => n.selected).map((n) => n.id);
