import { useReactFlow } from '@xyflow/react';
import { useEffect } from 'react';
import { editor } from '../state/editorStore';
import { projects } from '../state/projectStore';

export const SHORTCUTS: [string, string][] = [
  ['Drag from the palette', 'add a layer (drop onto a block to put it inside)'],
  ['Drag handle → handle', 'connect'],
  ['Double-click the canvas, or /', 'search for a layer and insert it there'],
  ['Delete / Backspace', 'delete the selection (a layer in a chain: its neighbours are joined)'],
  ['Ctrl+Delete', 'delete without joining the neighbours'],
  ['Shift/Ctrl + click, Shift + drag', 'multi-select'],
  ['Ctrl+Z / Ctrl+Shift+Z, Ctrl+Y', 'undo / redo'],
  ['Ctrl+C / Ctrl+X / Ctrl+V', 'copy / cut / paste'],
  ['Ctrl+D', 'duplicate'],
  ['Ctrl+A', 'select all'],
  ['Ctrl+G / Ctrl+Shift+G', 'group into a block / ungroup'],
  ['L', 'auto-layout'],
  ['F', 'fit view'],
  ['Ctrl+S', 'save a version'],
  ['?', 'this help'],
  ['Esc', 'close help, clear selection'],
];

function typing(t: EventTarget | null): boolean {
  const el = t as HTMLElement | null;
  if (!el) return false;
  return el.tagName === 'INPUT' || el.tagName === 'TEXTAREA' || el.tagName === 'SELECT' || el.isContentEditable;
}

export function useShortcuts(toggleHelp: () => void, closeHelp: () => void) {
  const { fitView } = useReactFlow();
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') {
        closeHelp();
        if (!typing(e.target)) editor.select(null);
        return;
      }
      if (typing(e.target)) return;
      const mod = e.ctrlKey || e.metaKey;
      const k = e.key.toLowerCase();
      const run = (fn: () => void) => {
        e.preventDefault();
        fn();
      };
      if (mod && k === 'z') return run(e.shiftKey ? editor.redo : editor.undo);
      if (mod && k === 'y') return run(editor.redo);
      if (mod && k === 'c') return run(editor.copy);
      if (mod && k === 'x') return run(editor.cut);
      if (mod && k === 'v') return run(editor.paste);
      if (mod && k === 'd') return run(editor.duplicate);
      if (mod && k === 'a') return run(editor.selectAll);
      if (mod && k === 'g') return run(e.shiftKey ? () => editor.ungroup() : editor.group);
      if (mod && k === 's') return run(() => void projects.save());
      if (mod && (e.key === 'Delete' || e.key === 'Backspace')) return run(() => editor.deleteSelected(false));
      if (mod || e.altKey) return;
      if (e.key === 'Delete' || e.key === 'Backspace') return run(editor.deleteSelected);
      if (e.key === '?') return run(toggleHelp);
      if (k === 'l') return run(editor.layout);
      if (k === 'f') return run(() => void fitView({ padding: 0.15, duration: 200 }));
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [fitView, toggleHelp, closeHelp]);
}

export function HelpOverlay({ onClose }: { onClose: () => void }) {
  return (
    <div className="overlay" onClick={onClose} data-testid="help-overlay">
      <div className="overlay-box" onClick={(e) => e.stopPropagation()}>
        <h2>Keyboard shortcuts</h2>
        <table>
          <tbody>
            {SHORTCUTS.map(([k, v]) => (
              <tr key={k}>
                <td>
                  <kbd>{k}</kbd>
                </td>
                <td>{v}</td>
              </tr>
            ))}
          </tbody>
        </table>
        <button type="button" onClick={onClose}>
          Close
        </button>
      </div>
    </div>
  );
}
