// Pure helpers for the run charts: what the x axis is (step, epoch or wall time), and the
// visible series as CSV.
import type { RunSeries } from '../state/runSeries';

export type XMode = 'step' | 'epoch' | 'time';

export const X_LABEL: Record<XMode, string> = { step: 'step', epoch: 'epoch', time: 'seconds' };

/** The x value of each step in `steps`: the step itself, its (fractional) epoch, or the seconds
 * since the run's first step event, taken from the step event that carried it. */
export function stepAxis(s: RunSeries, steps: number[], mode: XMode): number[] {
  if (mode === 'step') return steps;
  if (mode === 'epoch') {
    const per = s.stepsPerEpoch;
    return per ? steps.map((x) => x / per) : steps;
  }
  const out = new Array<number>(steps.length);
  const t0 = s.time.length ? s.time[0] : 0;
  let j = 0;
  for (let i = 0; i < steps.length; i++) {
    while (j < s.timeX.length - 1 && s.timeX[j] < steps[i]) j++;
    out[i] = s.time.length ? s.time[j] - t0 : 0;
  }
  return out;
}

/** The visible series as CSV: x, then one column per shown series (empty where a series has no
 * value at that x). */
export function toCsv(xLabel: string, labels: string[], data: ArrayLike<number | null | undefined>[], show: boolean[]): string {
  const cols = labels.map((_, i) => i).filter((i) => show[i]);
  const quote = (t: string) => (/[",\n]/.test(t) ? `"${t.replace(/"/g, '""')}"` : t);
  const lines = [[xLabel, ...cols.map((i) => labels[i])].map(quote).join(',')];
  const xs = data[0];
  for (let r = 0; r < xs.length; r++) {
    const row = [String(xs[r])];
    for (const i of cols) {
      const v = data[i + 1][r];
      row.push(v === null || v === undefined || Number.isNaN(v) ? '' : String(v));
    }
    lines.push(row.join(','));
  }
  return `${lines.join('\n')}\n`;
}
