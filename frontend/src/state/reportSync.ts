// Debounced report requests with sequence numbers: only the answer to the latest request is
// applied, however the responses arrive.

export interface ReportSyncOptions<G, R> {
  fetchReport: (graph: G, signal: AbortSignal) => Promise<R>;
  onReport: (report: R, seq: number) => void;
  onError?: (error: unknown, seq: number) => void;
  delayMs?: number;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
}

export interface ReportSync<G> {
  /** Schedules a request for this graph; earlier pending ones are dropped. */
  request(graph: G): number;
  /** Requests now, skipping the debounce. */
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
  let timer: unknown = null;
  let pending: { graph: G; seq: number } | null = null;
  let inflight: AbortController | null = null;
  let disposed = false;

  const send = () => {
    timer = null;
    if (!pending || disposed) return;
    const { graph, seq: mine } = pending;
    pending = null;
    inflight?.abort();
    const controller = new AbortController();
    inflight = controller;
    opts.fetchReport(graph, controller.signal).then(
      (report) => {
        // Stale: a later request has already been answered (or superseded this one).
        if (disposed || mine < applied || mine !== seq) return;
        applied = mine;
        opts.onReport(report, mine);
      },
      (error) => {
        if (disposed || controller.signal.aborted || mine !== seq) return;
        opts.onError?.(error, mine);
      },
    );
  };

  return {
    request(graph: G) {
      seq += 1;
      pending = { graph, seq };
      if (timer !== null) clearTimer(timer);
      timer = setTimer(send, delay);
      return seq;
    },
    flush() {
      if (timer !== null) clearTimer(timer);
      send();
    },
    dispose() {
      disposed = true;
      if (timer !== null) clearTimer(timer);
      inflight?.abort();
    },
    get latestSeq() {
      return seq;
    },
  };
}
