// Collects items (websocket messages) and hands them over at most once per animation frame.

export interface FrameBatcher<T> {
  push(item: T): void;
  flushNow(): void;
  dispose(): void;
  readonly pending: number;
}

export function createFrameBatcher<T>(
  flush: (items: T[]) => void,
  schedule: (cb: () => void) => unknown = (cb) => requestAnimationFrame(cb),
  cancel: (handle: unknown) => void = (h) => cancelAnimationFrame(h as number),
): FrameBatcher<T> {
  let items: T[] = [];
  let handle: unknown = null;
  const run = () => {
    handle = null;
    if (items.length === 0) return;
    const batch = items;
    items = [];
    flush(batch);
  };
  return {
    push(item) {
      items.push(item);
      if (handle === null) handle = schedule(run);
    },
    flushNow() {
      if (handle !== null) cancel(handle);
      run();
    },
    dispose() {
      if (handle !== null) cancel(handle);
      handle = null;
      items = [];
    },
    get pending() {
      return items.length;
    },
  };
}
