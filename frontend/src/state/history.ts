// Undo/redo as a pure value: { past, present, future }. Edits that share a `coalesce` key and
// arrive within `windowMs` of each other merge into one step (typing into a field, nudging).

export interface History<T> {
  past: T[];
  present: T;
  future: T[];
  lastKey: string | null;
  lastAt: number;
}

export const HISTORY_LIMIT = 200;

export function createHistory<T>(present: T): History<T> {
  return { past: [], present, future: [], lastKey: null, lastAt: 0 };
}

export interface PushOptions {
  coalesce?: string;
  now?: number;
  windowMs?: number;
  limit?: number;
}

export function push<T>(h: History<T>, next: T, opts: PushOptions = {}): History<T> {
  if (next === h.present) return h;
  const now = opts.now ?? Date.now();
  const windowMs = opts.windowMs ?? 800;
  const limit = opts.limit ?? HISTORY_LIMIT;
  const key = opts.coalesce ?? null;
  if (key !== null && key === h.lastKey && now - h.lastAt <= windowMs) {
    return { past: h.past, present: next, future: [], lastKey: key, lastAt: now };
  }
  const past = [...h.past, h.present];
  if (past.length > limit) past.splice(0, past.length - limit);
  return { past, present: next, future: [], lastKey: key, lastAt: now };
}

/** Replaces the present without making an undo step (selection, measurements, hover). */
export function replace<T>(h: History<T>, present: T): History<T> {
  return { ...h, present };
}

export function undo<T>(h: History<T>): History<T> {
  if (h.past.length === 0) return h;
  const previous = h.past[h.past.length - 1];
  return { past: h.past.slice(0, -1), present: previous, future: [h.present, ...h.future], lastKey: null, lastAt: 0 };
}

export function redo<T>(h: History<T>): History<T> {
  if (h.future.length === 0) return h;
  const [next, ...rest] = h.future;
  return { past: [...h.past, h.present], present: next, future: rest, lastKey: null, lastAt: 0 };
}

export const canUndo = <T>(h: History<T>) => h.past.length > 0;
export const canRedo = <T>(h: History<T>) => h.future.length > 0;
