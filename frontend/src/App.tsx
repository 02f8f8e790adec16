import { ReactFlowProvider, useReactFlow } from '@xyflow/react';
import { useCallback, useEffect, useLayoutEffect, useRef, useState } from 'react';
import { api } from './api/client';
import { Canvas } from './components/Canvas';
import { CodeView, EXPORTS, exportModel } from './components/CodeView';
import { Inspector } from './components/Inspector';
import { Palette } from './components/Palette';
import { ProjectsPanel } from './components/ProjectsPanel';
import { HelpOverlay, useShortcuts } from './components/Shortcuts';
import { StatusBar } from './components/StatusBar';
import { TrainingPanel } from './components/TrainingPanel';
import { cycleTheme, useTheme, watchTheme } from './lib/theme';
import { editor, selectedIds, useEditor } from './state/editorStore';
import { usePanelWidth } from './state/panelWidth';
import { projects, useProject, watchUnsaved } from './state/projectStore';
import { startReportSync } from './state/reportWiring';
import { training, watchRunList } from './state/trainingStore';

type Tab = 'inspector' | 'code' | 'train' | 'projects';
const TABS: [Tab, string][] = [
  ['inspector', 'Inspector'],
  ['code', 'Code'],
  ['train', 'Train'],
  ['projects', 'Projects'],
];

function TopBar({ onHelp }: { onHelp: () => void }) {
  const { fitView } = useReactFlow();
  const name = useEditor((s) => s.name);
  const direction = useEditor((s) => s.direction);
  const canUndo = useEditor((s) => s.history.past.length > 0);
  const canRedo = useEditor((s) => s.history.future.length > 0);
  const project = useProject((s) => s.projectName);
  const version = useProject((s) => s.version);
  const dirty = useProject((s) => s.dirty);
  const themeChoice = useTheme((s) => s.choice);
  return (
    <header className="top-bar">
      <span className="brand">LayerLab</span>
      <span className="project" title="project · model name">
        {project ?? 'unsaved'}
        {version ? ` v${version}` : ''} · {name}
      </span>
      {dirty && (
        <span className="unsaved" data-testid="unsaved" title="Changed since the last saved version; a draft is kept in this browser until you save">
          ● unsaved
        </span>
      )}
      <button type="button" onClick={editor.undo} disabled={!canUndo} title="Undo (Ctrl+Z)">
        ↶
      </button>
      <button type="button" onClick={editor.redo} disabled={!canRedo} title="Redo (Ctrl+Shift+Z)">
        ↷
      </button>
      <button type="button" onClick={editor.group} title="Group selection into a block (Ctrl+G)" data-testid="group">
        Group
      </button>
      <button type="button" onClick={editor.layout} title="Auto-layout (L)" data-testid="layout">
        Layout
      </button>
      <button type="button" onClick={editor.toggleDirection} title="Flow direction: top→bottom or left→right (re-layouts)" data-testid="direction">
        {direction === 'TB' ? '↓' : '→'}
      </button>
      <button type="button" onClick={() => void fitView({ padding: 0.15, duration: 200 })} title="Fit view (F)">
        Fit
      </button>
      <button type="button" onClick={() => void projects.save()} title="Save a version (Ctrl+S)" data-testid="save">
        Save
      </button>
      <span className="spacer" />
      <span className="muted">Export</span>
      {EXPORTS.map((x) => (
        <button key={x.format} type="button" onClick={() => void exportModel(x.format)}>
          {x.label}
        </button>
      ))}
      <button
        type="button"
        onClick={cycleTheme}
        data-testid="theme-toggle"
        aria-label={`Theme: ${themeChoice}`}
        title={`Theme: ${themeChoice === 'system' ? 'following the system' : themeChoice} (click to change)`}
      >
        {themeChoice === 'dark' ? '☾' : themeChoice === 'light' ? '☀' : '◐'}
      </button>
      <button type="button" onClick={onHelp} title="Keyboard shortcuts (?)">
        ?
      </button>
    </header>
  );
}

function Notice() {
  const notice = useEditor((s) => s.notice);
  useEffect(() => {
    if (!notice) return;
    const t = setTimeout(editor.dismissNotice, 4000);
    return () => clearTimeout(t);
  }, [notice]);
  return notice ? (
    <div className="notice" role="status" onClick={editor.dismissNotice}>
      {notice}
    </div>
  ) : null;
}

/** A draft found for the open project: restore it or discard it. */
function DraftBanner() {
  const offer = useProject((s) => s.draftOffer);
  if (!offer) return null;
  return (
    <div className="draft-banner" role="alert" data-testid="draft-banner">
      <span>
        Unsaved changes from {new Date(offer.at).toLocaleString()} were kept as a draft
        {offer.baseVersion ? ` (on version ${offer.baseVersion})` : ''}. Autosave waits until you choose.
      </span>
      <button type="button" className="primary" onClick={projects.restoreDraft} data-testid="draft-restore">
        Restore draft
      </button>
      <button type="button" onClick={projects.discardDraft} data-testid="draft-discard">
        Discard
      </button>
    </div>
  );
}

const sideMax = () => Math.max(320, Math.round(window.innerWidth * 0.7));
const paletteMax = () => Math.max(200, Math.round(window.innerWidth * 0.4));

function Editor() {
  const [tab, setTabState] = useState<Tab>('inspector');
  // One scroller for every tab: each tab opens where it was left (first time: at the top), not at
  // the scroll offset of the one before (the code view scrolls to a node's lines, far down).
  const body = useRef<HTMLDivElement>(null);
  const shownTab = useRef<Tab>(tab);
  const scrolled = useRef<Partial<Record<Tab, number>>>({});
  const setTab = useCallback((next: Tab) => {
    if (next === shownTab.current) return;
    if (body.current) scrolled.current[shownTab.current] = body.current.scrollTop;
    shownTab.current = next;
    setTabState(next);
  }, []);
  useLayoutEffect(() => {
    if (body.current) body.current.scrollTop = scrolled.current[tab] ?? 0;
  }, [tab]);
  // Selecting a node while the projects list is open shows the node, as the other tabs do.
  const selectedKey = useEditor((s) => selectedIds(s).join(','));
  useEffect(() => {
    if (selectedKey && shownTab.current === 'projects') setTab('inspector');
  }, [selectedKey, setTab]);
  const [help, setHelp] = useState(false);
  const toggleHelp = useCallback(() => setHelp((h) => !h), []);
  const closeHelp = useCallback(() => setHelp(false), []);
  useShortcuts(toggleHelp, closeHelp);
  // the code view can be made wide; the palette too, for long layer names
  const side = usePanelWidth({ pref: 'layerlab_side_width', min: 320, max: sideMax, initial: 400, grows: 'left' });
  const palette = usePanelWidth({ pref: 'layerlab_palette_width', min: 200, max: paletteMax, initial: 210, grows: 'right' });
  return (
    <div className="app">
      <TopBar onHelp={toggleHelp} />
      <DraftBanner />
      <div className="main">
        <Palette width={palette.width} />
        <div className="splitter" aria-label="Resize the layer palette" data-testid="palette-splitter" {...palette.separator} />
        <Canvas />
        <div className="splitter" aria-label="Resize the side panel" data-testid="side-splitter" {...side.separator} />
        <aside className="side" style={{ width: side.width }} data-testid="side-panel">
          <nav className="tabs">
            {TABS.map(([t, label]) => (
              <button key={t} type="button" className={tab === t ? 'active' : ''} onClick={() => setTab(t)} data-testid={`tab-${t}`}>
                {label}
              </button>
            ))}
          </nav>
          <div className="side-body" ref={body}>
            {tab === 'inspector' && <Inspector />}
            {tab === 'code' && <CodeView />}
            {/* Kept mounted so the charts keep their state while another tab is open. */}
            <div style={{ display: tab === 'train' ? 'block' : 'none' }}>
              <TrainingPanel />
            </div>
            {tab === 'projects' && <ProjectsPanel />}
          </div>
        </aside>
      </div>
      <StatusBar />
      <Notice />
      {help && <HelpOverlay onClose={closeHelp} />}
    </div>
  );
}

export function App() {
  useEffect(() => {
    const stop = startReportSync();
    api
      .catalog()
      .then((c) => editor.setCatalog(c as Parameters<typeof editor.setCatalog>[0]))
      .catch((e) => editor.notify(`Cannot load the catalog: ${e instanceof Error ? e.message : String(e)}`));
    void projects.restore().then(() => training.resume());
    const stopRunList = watchRunList();
    const stopUnsaved = watchUnsaved();
    const stopTheme = watchTheme();
    return () => {
      stop();
      stopRunList();
      stopUnsaved();
      stopTheme();
    };
  }, []);
  return (
    <ReactFlowProvider>
      <Editor />
    </ReactFlowProvider>
  );
}
