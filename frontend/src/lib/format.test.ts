import { describe, expect, it } from 'vitest';
import { formatBytes, formatCount, formatShape } from './format';

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
});
