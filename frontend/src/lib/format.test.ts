import { describe, expect, it } from 'vitest';
import { formatBytes, formatCount, formatNumber, formatShape } from './format';

describe('format', () => {
  it('formats shapes as C×H×W', () => {
    expect(formatShape([16, 14, 14])).toBe('16×14×14');
    expect(formatShape([10])).toBe('10');
    expect(formatShape(null)).toBe('—');
  });
  it('abbreviates counts and bytes', () => {
    expect(formatCount(1234)).toBe('1,234');
    expect(formatCount(61706)).toBe('61.7k');
    expect(formatCount(11_689_512)).toBe('11.7M');
    expect(formatBytes(74368)).toBe('72.6 KB');
    expect(formatBytes(512)).toBe('512 B');
  });
  it('keeps the zeros of whole numbers and drops only those after the point', () => {
    expect(formatCount(150_020)).toBe('150k'); // was '15k': ten times too small
    expect(formatCount(100_000)).toBe('100k');
    expect(formatCount(119_808)).toBe('120k');
    expect(formatCount(10_000)).toBe('10k');
    expect(formatCount(2_500_000)).toBe('2.5M');
    expect(formatCount(3_000_000_000)).toBe('3G');
    expect(formatBytes(737_280)).toBe('720 KB');
    expect(formatBytes(10 * 1024 * 1024)).toBe('10 MB');
    expect(formatNumber(1000)).toBe('1000');
    expect(formatNumber(120)).toBe('120');
    expect(formatNumber(2.5)).toBe('2.5');
    expect(formatNumber(0.001)).toBe('0.001');
    expect(formatNumber(3)).toBe('3');
    expect(formatNumber(12345)).toBe('1.23e+4');
  });
});
