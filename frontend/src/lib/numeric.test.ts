import { describe, expect, it } from 'vitest';
import { numericRule, parseNumeric } from './numeric';

const lr = numericRule({ type: 'number', exclusiveMinimum: 0, maximum: 10 });
const epochs = numericRule({ anyOf: [{ type: 'integer', minimum: 1 }, { type: 'null' }] });

describe('parseNumeric', () => {
  it('reads every prefix of "1e-3" without inventing a number', () => {
    const seen = ['1', '1e', '1e-', '1e-3'].map((t) => parseNumeric(t, lr));
    expect(seen[0]).toEqual({ ok: true, value: 1 });
    expect(seen[1].ok).toBe(false);
    expect(seen[2].ok).toBe(false);
    expect(seen[3]).toEqual({ ok: true, value: 0.001 });
  });

  it('takes .001, 3e-4 and signs; refuses "-", "." and commas', () => {
    expect(parseNumeric('.001', lr)).toEqual({ ok: true, value: 0.001 });
    expect(parseNumeric('3e-4', lr)).toEqual({ ok: true, value: 0.0003 });
    expect(parseNumeric('-', lr)).toEqual({ ok: false, error: '"-" is not a number' });
    expect(parseNumeric('.', lr).ok).toBe(false);
    expect(parseNumeric('1,5', lr).ok).toBe(false);
    expect(parseNumeric('0x10', lr).ok).toBe(false);
  });

  it('applies the schema range and integer rule, naming the received value', () => {
    expect(parseNumeric('0', lr)).toEqual({ ok: false, error: 'must be > 0; received 0' });
    expect(parseNumeric('11', lr)).toEqual({ ok: false, error: 'must be ≤ 10; received 11' });
    expect(parseNumeric('2.5', epochs)).toEqual({ ok: false, error: '2.5 is not a whole number' });
    expect(parseNumeric('0', epochs)).toEqual({ ok: false, error: 'must be ≥ 1; received 0' });
    expect(parseNumeric('1e2', epochs)).toEqual({ ok: true, value: 100 });
  });

  it('an empty field is null where the setting may be unset, else the default', () => {
    expect(epochs.nullable).toBe(true);
    expect(parseNumeric('', epochs)).toEqual({ ok: true, value: null });
    expect(parseNumeric('  ', lr)).toEqual({ ok: true, value: undefined });
  });
});
