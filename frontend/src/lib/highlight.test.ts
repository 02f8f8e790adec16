import { describe, expect, it } from 'vitest';
import { tokenize } from './highlight';

describe('tokenize', () => {
  it('keeps every character and classifies the usual tokens', () => {
    const src = 'import torch\n\nclass Net(nn.Module):  # the model\n    def forward(self, x):\n        return self.fc(x) * 2.5 + "s"\n';
    const toks = tokenize(src);
    expect(toks.map((t) => t.text).join('')).toBe(src);
    const kinds = (k: string) => toks.filter((t) => t.kind === k).map((t) => t.text);
    expect(kinds('kw')).toEqual(['import', 'class', 'def', 'return']);
    expect(kinds('def')).toEqual(['Net', 'forward']);
    expect(kinds('com')).toEqual(['# the model']);
    expect(kinds('num')).toEqual(['2.5']);
    expect(kinds('str')).toEqual(['"s"']);
  });
  it('does not colour keywords inside strings', () => {
    const toks = tokenize('x = "for if"');
    expect(toks.filter((t) => t.kind === 'kw')).toEqual([]);
  });
});
