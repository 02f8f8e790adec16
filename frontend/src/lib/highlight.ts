// A small Python tokenizer for the code view: enough to colour keywords, strings, comments,
// numbers, decorators and names; not a parser.

export type TokenKind = 'kw' | 'str' | 'com' | 'num' | 'deco' | 'builtin' | 'text' | 'def';
export interface Token {
  kind: TokenKind;
  text: string;
}

const KEYWORDS = new Set(
  'False None True and as assert async await break class continue def del elif else except finally for from global if import in is lambda nonlocal not or pass raise return try while with yield'.split(' '),
);
const BUILTINS = new Set('self super len range int float print isinstance tuple list dict torch nn F'.split(' '));

const RE = /("""[\s\S]*?"""|'''[\s\S]*?'''|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*')|(#[^\n]*)|(@[A-Za-z_][\w.]*)|(\b\d[\d_]*(?:\.\d+)?(?:e-?\d+)?\b)|([A-Za-z_]\w*)/g;

export function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let last = 0;
  let prevWord = '';
  for (const m of src.matchAll(RE)) {
    const i = m.index ?? 0;
    if (i > last) out.push({ kind: 'text', text: src.slice(last, i) });
    const [text, str, com, deco, num, word] = m;
    if (str) out.push({ kind: 'str', text });
    else if (com) out.push({ kind: 'com', text });
    else if (deco) out.push({ kind: 'deco', text });
    else if (num) out.push({ kind: 'num', text });
    else if (word) {
      const kind: TokenKind = KEYWORDS.has(word) ? 'kw' : prevWord === 'def' || prevWord === 'class' ? 'def' : BUILTINS.has(word) ? 'builtin' : 'text';
      out.push({ kind, text });
      prevWord = word;
      last = i + text.length;
      continue;
    }
    prevWord = '';
    last = i + text.length;
  }
  if (last < src.length) out.push({ kind: 'text', text: src.slice(last) });
  return out;
}
