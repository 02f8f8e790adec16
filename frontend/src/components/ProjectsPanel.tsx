import { useEffect, useRef, useState } from 'react';
import { parseGraphJson } from '../graph/convert';
import { editor } from '../state/editorStore';
import { projects, useProject } from '../state/projectStore';
import { downloadBlob } from '../api/client';
import { TemplateGallery } from './TemplateGallery';

export function ProjectsPanel() {
  const projectId = useProject((s) => s.projectId);
  const projectName = useProject((s) => s.projectName);
  const version = useProject((s) => s.version);
  const versions = useProject((s) => s.versions);
  const list = useProject((s) => s.projects);
  const busy = useProject((s) => s.busy);
  const error = useProject((s) => s.error);
  const [message, setMessage] = useState('');
  const [newName, setNewName] = useState('');
  const file = useRef<HTMLInputElement>(null);
  useEffect(() => {
    void projects.refresh();
  }, []);
  return (
    <div className="projects pad" data-testid="projects">
      <h2>Project</h2>
      {projectId ? (
        <>
          <label className="field">
            <span className="field-name">Name</span>
            <input
              type="text"
              defaultValue={projectName ?? ''}
              key={projectId}
              onBlur={(e) => e.target.value && e.target.value !== projectName && void projects.rename(e.target.value)}
            />
          </label>
          <div className="muted">version {version}</div>
        </>
      ) : (
        <p className="muted">Not saved yet. Save creates a project.</p>
      )}
      <div className="row">
        <input type="text" placeholder="version note (optional)" value={message} onChange={(e) => setMessage(e.target.value)} />
        <button
          type="button"
          disabled={busy}
          onClick={async () => {
            await projects.save(message || undefined);
            setMessage('');
          }}
        >
          Save
        </button>
      </div>
      {error && <div className="node-error">{error}</div>}

      <h3>Versions</h3>
      <ul className="list">
        {versions
          .slice()
          .reverse()
          .map((v) => (
            <li key={v.version}>
              <button type="button" className="link" onClick={() => projectId && void projects.open(projectId, v.version)}>
                v{v.version}
              </button>{' '}
              <span className="muted">{new Date(v.created_at).toLocaleString()}</span> {v.message}
            </li>
          ))}
      </ul>

      <h3>Open</h3>
      <ul className="list">
        {list.map((p) => (
          <li key={p.id}>
            <button type="button" className="link" onClick={() => void projects.open(p.id)}>
              {p.name}
            </button>{' '}
            <span className="muted">v{p.latest_version}</span>{' '}
            <button type="button" className="small danger" title="Delete project" onClick={() => confirm(`Delete ${p.name}?`) && void projects.remove(p.id)}>
              ✕
            </button>
          </li>
        ))}
      </ul>

      <h3>New</h3>
      <div className="row wrap">
        <input type="text" placeholder="project name" aria-label="Empty project's name" value={newName} onChange={(e) => setNewName(e.target.value)} />
        <button
          type="button"
          disabled={list.some((p) => p.name === (newName.trim() || 'model'))}
          title={list.some((p) => p.name === (newName.trim() || 'model')) ? 'A project with this name exists' : 'An Input and an Output, nothing between'}
          onClick={() => {
            const name = newName.trim() || 'model';
            void projects
              .create(name, {
                format: 'layerlab.graph/1',
                name,
                nodes: [
                  { id: 'input', op: 'Input', params: { shape: [1, 8, 8] }, position: { x: 0, y: 0 } },
                  { id: 'output', op: 'Output', params: {}, position: { x: 0, y: 300 } },
                ],
                edges: [],
              })
              .then(() => {
                if (useProject.getState().projectName === name) setNewName(''); // made: ready for the next one
              });
          }}
        >
          Empty project
        </button>
      </div>
      <h3>From a template</h3>
      <TemplateGallery />

      <h3>File</h3>
      <div className="row">
        <button type="button" onClick={() => file.current?.click()}>
          Import JSON…
        </button>
        <button
          type="button"
          onClick={() => {
            const doc = editor.currentGraph();
            downloadBlob(new Blob([JSON.stringify(doc, null, 1)], { type: 'application/json' }), `${doc.name || 'model'}.json`);
          }}
        >
          Export JSON
        </button>
        <input
          ref={file}
          type="file"
          accept=".json,application/json"
          hidden
          data-testid="import-file"
          onChange={async (e) => {
            const f = e.target.files?.[0];
            e.target.value = '';
            if (!f) return;
            try {
              editor.load(parseGraphJson(await f.text()), { keepHistory: true });
            } catch (err) {
              editor.notify(`Import failed: ${err instanceof Error ? err.message : String(err)}`);
            }
          }}
        />
      </div>
    </div>
  );
}
