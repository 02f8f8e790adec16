import {
  Background,
  ControlButton,
  Controls,
  MarkerType,
  MiniMap,
  type NodeTypes,
  ReactFlow,
  useNodesInitialized,
  useReactFlow,
  useUpdateNodeInternals,
  type OnConnect,
  type Connection,
} from '@xyflow/react';
import { useCallback, useEffect, useRef, useState, type DragEvent } from 'react';
import type { OpName } from '../api/types';
import { connectionProblem, withDescendants } from '../graph/edit';
import { type FlowEdge, type FlowNode, isBlock } from '../graph/kinds';
import { readPref, writePref } from '../lib/prefs';
import { useTheme } from '../lib/theme';
import { editor, useEditor } from '../state/editorStore';
import { BlockNode } from './BlockNode';
import { LayerNode } from './LayerNode';
import { type InsertPoint, QuickInsert } from './QuickInsert';

// Module scope: a new object per render would remount every node.
const nodeTypes: NodeTypes = { layer: LayerNode, block: BlockNode };

export const DRAG_MIME = 'application/layerlab-op';

/** Opening a graph never zooms out further than this (smaller text is unreadable); scroll instead. */
export const MIN_READABLE_ZOOM = 0.6;
const MAX_FIT_ZOOM = 1;

const onConnect: OnConnect = (c: Connection) => editor.connect(c);
// Arrowheads show which way data flows.
const defaultEdgeOptions = { type: 'smoothstep', markerEnd: { type: MarkerType.ArrowClosed, width: 16, height: 16 } };
const minimapColor = (n: FlowNode) => (isBlock(n) ? 'rgba(120,140,170,0.35)' : n.data.frozen ? '#9fb4c7' : '#6d8bd6');

export function Canvas() {
  const nodes = useEditor((s) => s.nodes);
  const edges = useEditor((s) => s.edges);
  const loadCount = useEditor((s) => s.loadCount);
  const direction = useEditor((s) => s.direction);
  const theme = useTheme((s) => s.theme);
  const [minimap, setMinimap] = useState(() => readPref('layerlab_minimap') === 'on');
  const toggleMinimap = useCallback(() => {
    setMinimap((m) => {
      writePref('layerlab_minimap', m ? 'off' : 'on');
      return !m;
    });
  }, []);
  const { screenToFlowPosition, getIntersectingNodes, getInternalNode, getNodesBounds, setViewport } = useReactFlow<FlowNode>();
  const box = useRef<HTMLDivElement>(null);

  // Once a newly loaded graph's nodes have been measured: fit it, but never below a readable
  // zoom; a graph too tall (or wide) for that starts at its top (left) and scrolls.
  const initialized = useNodesInitialized();
  const [fitted, setFitted] = useState(-1);
  useEffect(() => {
    if (!initialized || fitted === loadCount || !box.current) return;
    setFitted(loadCount);
    const shown = useEditor.getState().nodes.filter((n) => !n.hidden && !n.parentId);
    if (!shown.length) return;
    const b = getNodesBounds(shown);
    const { width, height } = box.current.getBoundingClientRect();
    const pad = 40;
    const zoom = Math.min(MAX_FIT_ZOOM, Math.max(MIN_READABLE_ZOOM, Math.min((width - 2 * pad) / b.width, (height - 2 * pad) / b.height)));
    const x = b.width * zoom > width - 2 * pad ? pad - b.x * zoom : (width - b.width * zoom) / 2 - b.x * zoom;
    const y = b.height * zoom > height - 2 * pad ? pad - b.y * zoom : (height - b.height * zoom) / 2 - b.y * zoom;
    void setViewport({ x, y, zoom }, { duration: 150 });
  }, [initialized, loadCount, fitted, getNodesBounds, setViewport]);

  // Handles move when the direction flips: React Flow must re-measure them, or edges would be
  // routed to where the handles were (loops around every node).
  const updateNodeInternals = useUpdateNodeInternals();
  useEffect(() => {
    updateNodeInternals(useEditor.getState().nodes.map((n) => n.id));
  }, [direction, updateNodeInternals]);

  const onDragOver = useCallback((e: DragEvent) => {
    if (e.dataTransfer.types.includes(DRAG_MIME)) {
      e.preventDefault();
      e.dataTransfer.dropEffect = 'copy';
    }
  }, []);

  const onDrop = useCallback(
    (e: DragEvent) => {
      const op = e.dataTransfer.getData(DRAG_MIME) as OpName;
      if (!op) return;
      e.preventDefault();
      const p = screenToFlowPosition({ x: e.clientX, y: e.clientY });
      // Dropped onto an (expanded) block: the layer goes inside it, the innermost one wins.
      const hits = getIntersectingNodes({ x: p.x, y: p.y, width: 1, height: 1 }).filter(
        (n) => isBlock(n) && !n.data.collapsed && !n.hidden,
      );
      const depth = (n: FlowNode): number => {
        let d = 0;
        let cur = n.parentId;
        while (cur) {
          d += 1;
          cur = getInternalNode(cur)?.parentId;
        }
        return d;
      };
      const target = hits.sort((a, b) => depth(b) - depth(a))[0];
      const position = { x: p.x - 95, y: p.y - 20 };
      if (target && op !== 'Input' && op !== 'Output') {
        const abs = getInternalNode(target.id)?.internals.positionAbsolute ?? target.position;
        editor.addNode(op, { x: Math.max(8, position.x - abs.x), y: Math.max(48, position.y - abs.y) }, target.id);
      } else editor.addNode(op, position);
    },
    [screenToFlowPosition, getIntersectingNodes, getInternalNode],
  );

  // Dragging a node onto an expanded block moves it inside; dragging it out of its block moves it
  // out (to the block under it, or the top level). Part of the drag's own undo step.
  const onNodeDragStop = useCallback(
    (_: unknown, node: FlowNode) => {
      if (node.data.op === 'Input' || node.data.op === 'Output') return;
      const me = getInternalNode(node.id);
      if (!me) return;
      const cx = me.internals.positionAbsolute.x + (me.measured.width ?? 0) / 2;
      const cy = me.internals.positionAbsolute.y + (me.measured.height ?? 0) / 2;
      const all = useEditor.getState().nodes;
      const mine = withDescendants(all, [node.id]);
      let best: { id: string; area: number } | null = null;
      for (const b of all) {
        if (!isBlock(b) || b.data.collapsed || b.hidden || mine.has(b.id)) continue;
        const ib = getInternalNode(b.id);
        if (!ib) continue;
        const { x, y } = ib.internals.positionAbsolute;
        const w = ib.measured.width ?? b.width ?? 0;
        const h = ib.measured.height ?? b.height ?? 0;
        // The innermost block under the node's centre: the smallest one that holds it.
        if (cx >= x && cx <= x + w && cy >= y && cy <= y + h && (!best || w * h < best.area)) best = { id: b.id, area: w * h };
      }
      const target = best?.id;
      if (target !== node.parentId) editor.reparent(node.id, target, { afterDrag: true });
    },
    [getInternalNode],
  );

  // Search-and-insert at the cursor: double-click on the empty canvas, or `/`.
  const [insertAt, setInsertAt] = useState<InsertPoint | null>(null);
  const pointer = useRef<{ x: number; y: number } | null>(null);
  const openInsert = useCallback(
    (clientX: number, clientY: number) => {
      const r = box.current?.getBoundingClientRect();
      if (!r) return;
      const box_ = { x: Math.min(clientX - r.left, r.width - 260), y: Math.min(clientY - r.top, r.height - 260) };
      setInsertAt({ box: box_, flow: screenToFlowPosition({ x: clientX, y: clientY }) });
    },
    [screenToFlowPosition],
  );
  const onDoubleClick = useCallback(
    (e: React.MouseEvent) => {
      if ((e.target as HTMLElement).closest('.react-flow__pane')) openInsert(e.clientX, e.clientY);
    },
    [openInsert],
  );
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const el = e.target as HTMLElement | null;
      if (e.key !== '/' || e.ctrlKey || e.metaKey || e.altKey || (el && (el.tagName === 'INPUT' || el.tagName === 'TEXTAREA' || el.tagName === 'SELECT' || el.isContentEditable))) return;
      const r = box.current?.getBoundingClientRect();
      if (!r) return;
      e.preventDefault();
      const p = pointer.current ?? { x: r.left + r.width / 2, y: r.top + r.height / 3 };
      openInsert(p.x, p.y);
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [openInsert]);

  // Edges are checked while drawing: one across a block boundary or closing a cycle is refused,
  // and the reason shows until the drag ends.
  const [refusal, setRefusal] = useState<string | null>(null);
  const isValidConnection = useCallback((c: Connection | FlowEdge) => {
    const why = connectionProblem(useEditor.getState().history.present, c);
    setRefusal(why);
    return why === null;
  }, []);
  const onConnectEnd = useCallback(() => {
    setRefusal((why) => {
      if (why) editor.notify(`Not connected: ${why}`);
      return null;
    });
  }, []);

  return (
    <div ref={box} className={`canvas dir-${direction}`} onDragOver={onDragOver}
      onDrop={onDrop}
      onDoubleClick={onDoubleClick}
      onMouseMove={(e) => {
        pointer.current = { x: e.clientX, y: e.clientY };
      }}
      onMouseLeave={() => {
        pointer.current = null;
      }}
      data-testid="canvas"
    >
      <ReactFlow<FlowNode>
        nodes={nodes}
        edges={edges}
        nodeTypes={nodeTypes}
        colorMode={theme}
        onNodesChange={editor.onNodesChange}
        onEdgesChange={editor.onEdgesChange}
        onConnect={onConnect}
        onNodeDragStop={onNodeDragStop}
        deleteKeyCode={null}
        multiSelectionKeyCode={['Shift', 'Meta', 'Control']}
        selectionKeyCode="Shift"
        minZoom={0.1}
        maxZoom={2}
        defaultEdgeOptions={defaultEdgeOptions}
        isValidConnection={isValidConnection}
        onConnectEnd={onConnectEnd}
        connectionRadius={30}
        proOptions={{ hideAttribution: true }}
        onlyRenderVisibleElements={nodes.length > 150}
        zoomOnDoubleClick={false}
      >
        <Background gap={16} />
        {refusal && (
          <div className="connect-refusal" role="status" data-testid="connect-refusal">
            {refusal}
          </div>
        )}
        {nodes.length === 0 && (
          <div className="empty-canvas" data-testid="empty-canvas">
            <h2>Start a model</h2>
            <p>Drag a layer from the palette on the left, beginning with an Input.</p>
            <p>Or double-click here (or press /) to search for a layer and insert it.</p>
            <p>Or open a template in the Projects tab: a small CNN, a ResNet, an MLP…</p>
          </div>
        )}
        {/* Off by default; when on it sits bottom-left beside the zoom buttons, away from the
            right-hand side where error callouts hang. */}
        {minimap && <MiniMap pannable zoomable nodeColor={minimapColor} position="bottom-left" style={{ left: 44, width: 160, height: 110 }} ariaLabel="Minimap" />}
        <Controls showInteractive={false}>
          <ControlButton onClick={toggleMinimap} title={minimap ? 'Hide the minimap' : 'Show the minimap'} aria-label="Minimap" aria-pressed={minimap} data-testid="minimap-toggle">
            ▦
          </ControlButton>
        </Controls>
      </ReactFlow>
      {insertAt && <QuickInsert at={insertAt} onClose={() => setInsertAt(null)} />}
    </div>
  );
}
