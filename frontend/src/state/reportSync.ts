// Report requests for the editor, throttled with a leading edge: an isolated edit is sent at
// once (so badges update one round trip after the edit), a burst of edits sends at most one
// request per `delayMs` and always ends with the latest graph. Answers carry sequence numbers:
// an answer is applied only if it is newer than the one on screen, however responses arrive.

export interface ReportSyncOptions<G, R> {
  fetchReport: (graph: G, signal: AbortSignal) => Promise<R>;
  onReport: (report: R, seq: number) => void;
  onError?: (error: unknown, seq: number) => void;
  delayMs?: number;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
}

export interface ReportSync<G> {
  /** Sends now if the last request is older than the throttle window, else when it ends. */
  request(graph: G): number;
  /** Sends the pending graph now, skipping the throttle. */
  flush(): void;
  dispose(): void;
  readonly latestSeq: number;
}

export function createReportSync<G, R>(opts: ReportSyncOptions<G, R>): ReportSync<G> {
  const delay = opts.delayMs ?? 150;
  const setTimer = opts.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
  const clearTimer = opts.clearTimer ?? ((h) => clearTimeout(h as ReturnType<typeof setTimeout>));
  let seq = 0;
  let applied = 0;
  let timer: unknown = null; // the throttle window after a send
  let pending: { graph: G; seq: number } | null = null;
  const inflight = new Set<AbortController>();
  let disposed = false;

  const send = () => {
    if (!pending || disposed) return;
    const { graph, seq: mine } = pending;
    pending = null;
    const controller = new AbortController();
    inflight.add(controller);
    opts.fetchReport(graph, controller.signal).then(
      (report) => {
        inflight.delete(controller);
        // Stale: a newer answer is already on screen.
        if (disposed || mine <= applied) return;
        applied = mine;
        opts.onReport(report, mine);
      },
      (error) => {
        inflight.delete(controller);
        if (disposed || controller.signal.aborted || mine !== seq) return;
        opts.onError?.(error, mine);
      },
    );
  };

  const windowEnds = () => {
    timer = null;
    if (pending) {
      send();
      timer = setTimer(windowEnds, delay);
    }
  };

  return {
    request(graph: G) {
      seq += 1;
      pending = { graph, seq };
      if (timer === null) {
        send();
        timer = setTimer(windowEnds, delay);
      }
      return seq;
    },
    flush() {
      send();
    },
    dispose() {
      disposed = true;
      if (timer !== null) clearTimer(timer);
      for (const c of inflight) c.abort();
      inflight.clear();
    },
    get latestSeq() {
      return seq;
    },
  };
}
