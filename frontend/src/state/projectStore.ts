// The open project: which one, its latest saved version, and whether the canvas has changed since.
import { create } from 'zustand';
import { api } from '../api/client';
import type { GraphDoc, ProjectSummary, VersionSummary } from '../api/types';
import { parseGraphJson } from '../graph/convert';
import { editor } from './editorStore';

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
}));

const set = useProject.setState;
const get = useProject.getState;

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
  try {
    if (id) localStorage.setItem('layerlab_project', id);
    else localStorage.removeItem('layerlab_project');
  } catch {
    /* ignore */
  }
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
      set({ versions: await api.projects.versions(p.id) });
    });
  },

  /** Saves the canvas as a new version (a new project if none is open). Returns the version. */
  async save(message?: string): Promise<{ projectId: string; version: number } | null> {
    const doc: GraphDoc = editor.currentGraph();
    const json = JSON.stringify(doc);
    const s = get();
    if (s.projectId && s.version && s.savedJson === json) return { projectId: s.projectId, version: s.version };
    return guard(async () => {
      if (!s.projectId) {
        const p = await api.projects.create(doc.name || 'model', doc);
        set({ projectId: p.id, projectName: p.name, version: p.latest_version, savedJson: json });
        remember(p.id);
        set({ versions: await api.projects.versions(p.id), projects: await api.projects.list() });
        return { projectId: p.id, version: p.latest_version };
      }
      const v = await api.projects.save(s.projectId, doc, message);
      set({ version: v.version, savedJson: json, versions: await api.projects.versions(s.projectId), projects: await api.projects.list() });
      return { projectId: s.projectId, version: v.version };
    });
  },

  async create(name: string, doc: GraphDoc) {
    await guard(async () => {
      const p = await api.projects.create(name, doc);
      editor.load(parseGraphJson(JSON.stringify(p.graph)));
      set({ projectId: p.id, projectName: p.name, version: p.latest_version, savedJson: JSON.stringify(editor.currentGraph()) });
      remember(p.id);
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
        set({ projectId: null, projectName: null, version: null, savedJson: null, versions: [] });
        remember(null);
      }
      set({ projects: await api.projects.list() });
    });
  },

  /** On page load: the project open last time, else the newest one. */
  async restore() {
    const list = await projects.refresh();
    let last: string | null = null;
    try {
      last = localStorage.getItem('layerlab_project');
    } catch {
      /* ignore */
    }
    const pick = list.find((p) => p.id === last) ?? list[0];
    if (pick) await projects.open(pick.id);
  },
};
