import { describe, expect, it, vi } from 'vitest';
import { createReportSync } from './reportSync';

function deferred<T>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

describe('reportSync', () => {
  it('debounces bursts into one request for the latest graph', async () => {
    vi.useFakeTimers();
    const fetchReport = vi.fn(async (g: number) => `r${g}`);
    const onReport = vi.fn();
    const sync = createReportSync({ fetchReport, onReport, delayMs: 150 });
    sync.request(1);
    vi.advanceTimersByTime(100);
    sync.request(2);
    vi.advanceTimersByTime(100);
    sync.request(3);
    expect(fetchReport).not.toHaveBeenCalled();
    vi.advanceTimersByTime(150);
    expect(fetchReport).toHaveBeenCalledTimes(1);
    expect(fetchReport.mock.calls[0][0]).toBe(3);
    await vi.runAllTimersAsync();
    expect(onReport).toHaveBeenCalledWith('r3', 3);
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
    sync.flush();
    sync.request(2);
    sync.flush();
    answers.get(2)!.resolve('new');
    await Promise.resolve();
    await Promise.resolve();
    answers.get(1)!.resolve('old');
    await Promise.resolve();
    await Promise.resolve();
    expect(onReport.mock.calls).toEqual([['new', 2]]);
  });

  it('aborts the in-flight request when a newer one is sent', () => {
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
    sync.flush();
    sync.request(2);
    sync.flush();
    expect(signals[0].aborted).toBe(true);
    expect(signals[1].aborted).toBe(false);
    sync.dispose();
    expect(signals[1].aborted).toBe(true);
  });
});
