import { describe, expect, it } from 'vitest';
import { emptySeries } from '../state/runSeries';
import { stepAxis, toCsv } from './chartData';

function run() {
  const s = emptySeries('r');
  s.stepsPerEpoch = 4;
  // Step events carried steps 1–3 at t=100.0, 4–6 at t=100.5, 7 at t=101.2.
  s.timeX.push(3, 6, 7);
  s.time.push(100, 100.5, 101.2);
  return s;
}

describe('stepAxis', () => {
  const steps = [1, 2, 3, 4, 5, 6, 7];
  it('by step is the steps themselves', () => expect(stepAxis(run(), steps, 'step')).toBe(steps));
  it('by epoch divides by the steps per epoch', () => expect(stepAxis(run(), [2, 4, 6], 'epoch')).toEqual([0.5, 1, 1.5]));
  it('by time takes the wall time of the event that carried each step, from 0', () => {
    const t = stepAxis(run(), steps, 'time');
    expect(t.map((x) => +x.toFixed(3))).toEqual([0, 0, 0, 0.5, 0.5, 0.5, 1.2]);
  });
  it('falls back to steps when the epoch length is unknown', () => {
    const s = run();
    s.stepsPerEpoch = null;
    expect(stepAxis(s, [2, 4], 'epoch')).toEqual([2, 4]);
  });
});

describe('toCsv', () => {
  it('writes x and the shown series only, blank where a series has no value', () => {
    const csv = toCsv('step', ['raw', 'smoothed', 'other, "run"'], [[1, 2], [0.5, 0.4], [0.5, 0.45], [null, 0.9]], [false, true, true]);
    expect(csv).toBe('step,smoothed,"other, ""run"""\n1,0.5,\n2,0.45,0.9\n');
  });
});
