import { describe, expect, it } from 'vitest';
import type { JsonSchema } from '../api/types';
import { classify, formatValue, parseText } from './paramFields';

const int = (min: number, max: number): JsonSchema => ({ type: 'integer', minimum: min, maximum: max });
const pair: JsonSchema = { type: 'array', prefixItems: [int(1, 9), int(1, 9)], minItems: 2, maxItems: 2 };
const kernel: JsonSchema = { anyOf: [int(1, 1024), pair], default: 3 };
const padding: JsonSchema = { anyOf: [int(0, 1024), pair, { type: 'string', enum: ['same', 'valid'] }], default: 0 };
const shape: JsonSchema = { type: 'array', items: int(1, 100), minItems: 1, maxItems: 4 };
const inferred: JsonSchema = { anyOf: [int(1, 1024), { type: 'null' }], default: null };

describe('classify', () => {
  it('maps schema types to fields', () => {
    expect(classify({ type: 'integer', minimum: 1, maximum: 64 })).toEqual({ kind: 'integer', min: 1, max: 64, nullable: false });
    expect(classify({ type: 'boolean', default: true }).kind).toBe('boolean');
    expect(classify({ type: 'string', enum: ['zeros', 'reflect'] })).toEqual({ kind: 'enum', options: ['zeros', 'reflect'], nullable: false });
    expect(classify(inferred)).toEqual({ kind: 'integer', min: 1, max: 1024, nullable: true });
    const k = classify(kernel);
    expect(k.kind).toBe('text');
    const p = classify(padding);
    expect(p.kind === 'text' && p.enums).toEqual(['same', 'valid']);
  });
});

describe('parseText', () => {
  const k = classify(kernel) as Extract<ReturnType<typeof classify>, { kind: 'text' }>;
  const p = classify(padding) as Extract<ReturnType<typeof classify>, { kind: 'text' }>;
  const s = classify(shape) as Extract<ReturnType<typeof classify>, { kind: 'text' }>;
  it('reads an int or a pair', () => {
    expect(parseText('3', k)).toBe(3);
    expect(parseText('3, 5', k)).toEqual([3, 5]);
    expect(parseText('3x5', k)).toEqual([3, 5]);
    expect(parseText('[3,5]', k)).toEqual([3, 5]);
    expect(parseText('', k)).toBeUndefined();
  });
  it('reads enum words', () => {
    expect(parseText('same', p)).toBe('same');
    expect(parseText('1', p)).toBe(1);
  });
  it('reads a list field as a list even with one item', () => {
    expect(parseText('1, 8, 8', s)).toEqual([1, 8, 8]);
    expect(parseText('64', s)).toEqual([64]);
  });
  it('passes anything else through for the backend to judge', () => {
    expect(parseText('big', k)).toBe('big');
  });
  it('formats values back', () => {
    expect(formatValue([1, 8, 8])).toBe('1, 8, 8');
    expect(formatValue(undefined)).toBe('');
  });
});
