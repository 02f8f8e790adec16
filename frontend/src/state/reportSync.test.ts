import { describe, expect, it, vi } from 'vitest';
import { createReportSync } from './reportSync';

function deferred<T>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

describe('reportSync', () => {
  it('sends an isolated edit at once', () => {
    vi.useFakeTimers();
    const fetchReport = vi.fn(async (g: number) => `r${g}`);
    const sync = createReportSync({ fetchReport, onReport: () => {}, delayMs: 150 });
    sync.request(1);
    expect(fetchReport).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(1000);
    sync.request(2);
    expect(fetchReport).toHaveBeenCalledTimes(2);
    expect(fetchReport.mock.calls.map((c) => c[0])).toEqual([1, 2]);
    sync.dispose();
    vi.useRealTimers();
  });

  it('throttles a burst to one request per window, ending with the latest graph', async () => {
    vi.useFakeTimers();
    const fetchReport = vi.fn(async (g: number) => `r${g}`);
    const onReport = vi.fn();
    const sync = createReportSync({ fetchReport, onReport, delayMs: 150 });
    sync.request(1); // leading edge
    vi.advanceTimersByTime(50);
    sync.request(2);
    vi.advanceTimersByTime(50);
    sync.request(3);
    expect(fetchReport.mock.calls.map((c) => c[0])).toEqual([1]);
    vi.advanceTimersByTime(50); // the window ends: the latest pending graph goes out
    expect(fetchReport.mock.calls.map((c) => c[0])).toEqual([1, 3]);
    vi.advanceTimersByTime(500); // nothing pending: nothing more is sent
    expect(fetchReport).toHaveBeenCalledTimes(2);
    await vi.runAllTimersAsync();
    expect(onReport).toHaveBeenLastCalledWith('r3', 3);
    sync.dispose();
    vi.useRealTimers();
  });

  it('ignores a stale answer that arrives after a newer one', async () => {
    const answers = new Map<number, ReturnType<typeof deferred<string>>>();
    const fetchReport = (g: number) => {
      const d = deferred<string>();
      answers.set(g, d);
      return d.promise;
    };
    const onReport = vi.fn();
    const sync = createReportSync({ fetchReport, onReport, delayMs: 0 });
    sync.request(1);
    sync.request(2);
    sync.flush();
    answers.get(2)!.resolve('new');
    await Promise.resolve();
    await Promise.resolve();
    answers.get(1)!.resolve('old');
    await Promise.resolve();
    await Promise.resolve();
    expect(onReport.mock.calls).toEqual([['new', 2]]);
    sync.dispose();
  });

  it('shows an older answer while a newer request is still in flight', async () => {
    const answers = new Map<number, ReturnType<typeof deferred<string>>>();
    const fetchReport = (g: number) => {
      const d = deferred<string>();
      answers.set(g, d);
      return d.promise;
    };
    const onReport = vi.fn();
    const sync = createReportSync({ fetchReport, onReport, delayMs: 0 });
    sync.request(1);
    sync.request(2);
    sync.flush();
    answers.get(1)!.resolve('older');
    await Promise.resolve();
    await Promise.resolve();
    answers.get(2)!.resolve('newer');
    await Promise.resolve();
    await Promise.resolve();
    expect(onReport.mock.calls).toEqual([['older', 1], ['newer', 2]]);
    sync.dispose();
  });

  it('aborts the requests in flight when disposed', () => {
    const signals: AbortSignal[] = [];
    const sync = createReportSync({
      fetchReport: (_g: number, s) => {
        signals.push(s);
        return new Promise<string>(() => {});
      },
      onReport: () => {},
      delayMs: 0,
    });
    sync.request(1);
    sync.request(2);
    sync.flush();
    expect(signals.map((s) => s.aborted)).toEqual([false, false]);
    sync.dispose();
    expect(signals.map((s) => s.aborted)).toEqual([true, true]);
  });
});
