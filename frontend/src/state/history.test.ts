import { describe, expect, it } from 'vitest';
import { canRedo, canUndo, createHistory, push, redo, replace, undo } from './history';

describe('history', () => {
  it('undoes and redoes in order; a new edit clears the redo stack', () => {
    let h = createHistory('a');
    h = push(h, 'b', { now: 0 });
    h = push(h, 'c', { now: 1000 });
    h = undo(h);
    expect(h.present).toBe('b');
    h = undo(h);
    expect(h.present).toBe('a');
    expect(canUndo(h)).toBe(false);
    h = redo(h);
    expect(h.present).toBe('b');
    h = push(h, 'x', { now: 2000 });
    expect(canRedo(h)).toBe(false);
    expect(h.past).toEqual(['a', 'b']);
  });

  it('coalesces edits with the same key inside the window only', () => {
    let h = createHistory('');
    h = push(h, 'h', { coalesce: 'label', now: 0 });
    h = push(h, 'he', { coalesce: 'label', now: 300 });
    h = push(h, 'hel', { coalesce: 'label', now: 600 });
    expect(h.past).toEqual(['']);
    h = push(h, 'hell', { coalesce: 'label', now: 5000 });
    expect(h.past).toEqual(['', 'hel']);
    h = push(h, 'hello', { coalesce: 'other', now: 5100 });
    expect(h.past).toEqual(['', 'hel', 'hell']);
  });

  it('never coalesces across an undo', () => {
    let h = createHistory(0);
    h = push(h, 1, { coalesce: 'k', now: 0 });
    h = undo(h);
    h = push(h, 2, { coalesce: 'k', now: 10 });
    expect(h.past).toEqual([0]);
    expect(undo(h).present).toBe(0);
  });

  it('caps the stack and ignores no-op pushes', () => {
    let h = createHistory(0);
    for (let i = 1; i <= 10; i++) h = push(h, i, { limit: 3, now: i * 1000 });
    expect(h.past).toEqual([7, 8, 9]);
    expect(push(h, h.present)).toBe(h);
  });

  it('replace changes the present without an undo step', () => {
    let h = push(createHistory('a'), 'b');
    h = replace(h, 'b2');
    expect(h.past).toEqual(['a']);
    expect(undo(h).present).toBe('a');
  });
});
