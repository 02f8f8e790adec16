// The open project: which one, its latest saved version, and whether the canvas has changed since.
import { create } from 'zustand';
import { api } from '../api/client';
import type { GraphDoc, ProjectSummary, VersionSummary } from '../api/types';
import { parseGraphJson } from '../graph/convert';
import { readPref, writePref } from '../lib/prefs';
import { editor, useEditor } from './editorStore';

/** Unsaved edits kept in the browser, per project, until they are saved or discarded. */
export interface Draft {
  doc: GraphDoc;
  /** When it was last written (ms since the epoch). */
  at: number;
  /** The saved version it started from. */
  baseVersion: number | null;
}

export interface ProjectState {
  projectId: string | null;
  projectName: string | null;
  version: number | null;
  /** The saved graph's JSON, to tell whether the canvas differs from it. */
  savedJson: string | null;
  projects: ProjectSummary[];
  versions: VersionSummary[];
  busy: boolean;
  error: string | null;
  /** The canvas differs from the saved version. */
  dirty: boolean;
  /** A draft found when the project opened, offered for restoring; autosave waits until it is settled. */
  draftOffer: Draft | null;
}

export const useProject = create<ProjectState>()(() => ({
  projectId: null,
  projectName: null,
  version: null,
  savedJson: null,
  projects: [],
  versions: [],
  busy: false,
  error: null,
  dirty: false,
  draftOffer: null,
}));

const set = useProject.setState;
const get = useProject.getState;

/** A save landed: its draft is done with, and the person is told which version it made. */
function saved(draftOf: string | null, notice: string) {
  writePref(draftKey(draftOf), null);
  set({ dirty: false, draftOffer: null });
  editor.notify(notice);
}

async function guard<T>(fn: () => Promise<T>): Promise<T | null> {
  set({ busy: true, error: null });
  try {
    return await fn();
  } catch (e) {
    set({ error: e instanceof Error ? e.message : String(e) });
    return null;
  } finally {
    set({ busy: false });
  }
}

function remember(id: string | null) {
  writePref('layerlab_project', id);
}

const draftKey = (projectId: string | null) => `layerlab_draft:${projectId ?? 'new'}`;

function readDraft(projectId: string | null): Draft | null {
  const raw = readPref(draftKey(projectId));
  if (!raw) return null;
  try {
    const d = JSON.parse(raw) as Draft;
    return d && d.doc && Array.isArray(d.doc.nodes) ? d : null;
  } catch {
    return null;
  }
}

/** After a graph from the server is on the canvas: offer its draft, if one differs from it. */
function offerDraft(projectId: string | null) {
  const d = readDraft(projectId);
  const saved = get().savedJson;
  set({ dirty: false, draftOffer: d && JSON.stringify(d.doc) !== saved ? d : null });
}

export const projects = {
  async refresh() {
    const list = await guard(() => api.projects.list());
    if (list) set({ projects: list });
    return list ?? [];
  },

  async open(id: string, version?: number) {
    await guard(async () => {
      const p = await api.projects.get(id);
      const graph = version ? (await api.projects.version(id, version)).graph : p.graph;
      const doc = parseGraphJson(JSON.stringify(graph));
      editor.load(doc);
      set({ projectId: p.id, projectName: p.name, version: version ?? p.latest_version, savedJson: JSON.stringify(editor.currentGraph()) });
      remember(p.id);
      offerDraft(p.id);
      set({ versions: await api.projects.versions(p.id) });
    });
  },

  /** Saves the canvas as a new version (a new project if none is open). Returns the version. */
  async save(message?: string): Promise<{ projectId: string; version: number } | null> {
    const doc: GraphDoc = editor.currentGraph();
    const json = JSON.stringify(doc);
    const s = get();
    if (s.projectId && s.version && s.savedJson === json) {
      editor.notify(`Nothing new to save: version ${s.version} is the canvas`);
      return { projectId: s.projectId, version: s.version };
    }
    return guard(async () => {
      if (!s.projectId) {
        const p = await api.projects.create(doc.name || 'model', doc);
        set({ projectId: p.id, projectName: p.name, version: p.latest_version, savedJson: json });
        remember(p.id);
        saved(null, `Saved as a new project “${p.name}”, version ${p.latest_version}`);
        set({ versions: await api.projects.versions(p.id), projects: await api.projects.list() });
        return { projectId: p.id, version: p.latest_version };
      }
      const v = await api.projects.save(s.projectId, doc, message);
      set({ version: v.version, savedJson: json });
      saved(s.projectId, `Saved version ${v.version}`);
      set({ versions: await api.projects.versions(s.projectId), projects: await api.projects.list() });
      return { projectId: s.projectId, version: v.version };
    });
  },

  async create(name: string, doc: GraphDoc) {
    await guard(async () => {
      const p = await api.projects.create(name, doc);
      editor.load(parseGraphJson(JSON.stringify(p.graph)));
      set({ projectId: p.id, projectName: p.name, version: p.latest_version, savedJson: JSON.stringify(editor.currentGraph()) });
      remember(p.id);
      offerDraft(p.id);
      set({ versions: await api.projects.versions(p.id), projects: await api.projects.list() });
    });
  },

  async rename(name: string) {
    const id = get().projectId;
    if (!id) return;
    await guard(async () => {
      const p = await api.projects.rename(id, name);
      set({ projectName: p.name, projects: await api.projects.list() });
    });
  },

  async remove(id: string) {
    await guard(async () => {
      await api.projects.remove(id);
      if (get().projectId === id) {
        set({ projectId: null, projectName: null, version: null, savedJson: null, versions: [], draftOffer: null });
        remember(null);
        writePref(draftKey(id), null);
      }
      set({ projects: await api.projects.list() });
    });
  },

  /** On page load: the project open last time, else the newest one. */
  async restore() {
    const list = await projects.refresh();
    const last = readPref('layerlab_project');
    const pick = list.find((p) => p.id === last) ?? list[0];
    if (pick) await projects.open(pick.id);
    else offerDraft(null);
  },

  /** Puts the offered draft on the canvas (one undo step back to the saved version). */
  restoreDraft() {
    const d = get().draftOffer;
    if (!d) return;
    set({ draftOffer: null });
    editor.load(d.doc, { keepHistory: true });
  },

  discardDraft() {
    writePref(draftKey(get().projectId), null);
    set({ draftOffer: null });
  },
};

/**
 * Tracks whether the canvas differs from the saved version, keeps a draft of it in the browser
 * (written a moment after each edit, and when the page is left) and asks before leaving with
 * unsaved changes. Returns the stop function.
 */
export function watchUnsaved(delayMs = 300): () => void {
  let timer: ReturnType<typeof setTimeout> | null = null;
  const check = () => {
    timer = null;
    const p = get();
    const doc = editor.currentGraph();
    const json = JSON.stringify(doc);
    const dirty = p.savedJson === null ? doc.nodes.length > 0 : json !== p.savedJson;
    if (dirty !== p.dirty) set({ dirty });
    // A draft offered but not settled yet is not overwritten.
    if (dirty && !p.draftOffer) {
      const draft: Draft = { doc, at: Date.now(), baseVersion: p.version };
      writePref(draftKey(p.projectId), JSON.stringify(draft));
    }
  };
  const unsubscribe = useEditor.subscribe((s, prev) => {
    if (s.nodes === prev.nodes && s.edges === prev.edges && s.name === prev.name) return;
    if (timer === null) timer = setTimeout(check, delayMs);
  });
  const onLeave = (e: BeforeUnloadEvent) => {
    if (timer !== null) {
      clearTimeout(timer);
      check();
    }
    if (get().dirty) {
      e.preventDefault();
      e.returnValue = ''; // older browsers need it set to show the prompt
    }
  };
  window.addEventListener('beforeunload', onLeave);
  return () => {
    unsubscribe();
    if (timer !== null) clearTimeout(timer);
    window.removeEventListener('beforeunload', onLeave);
  };
}
