// Turns a param's JSON schema (from the catalog) into a form field, and typed text back into a
// value. No validation beyond the input's type: the backend's report says what is wrong.
import type { JsonSchema } from '../api/types';

export type FieldKind =
  | { kind: 'integer' | 'number'; min?: number; max?: number; nullable: boolean }
  | { kind: 'boolean'; nullable: boolean }
  | { kind: 'enum'; options: string[]; nullable: boolean }
  | { kind: 'text'; hint: string; enums: string[]; nullable: boolean };

function describe(s: JsonSchema): string {
  if (s.enum) return s.enum.map(String).join(' | ');
  if (s.type === 'integer' || s.type === 'number') return s.type === 'integer' ? 'int' : 'number';
  if (s.type === 'array') {
    if (s.prefixItems) return `[${s.prefixItems.map(describe).join(', ')}]`;
    return `[${describe(s.items ?? {})}, …]`;
  }
  return s.type ?? 'value';
}

export function classify(schema: JsonSchema): FieldKind {
  const options = schema.anyOf ?? [schema];
  const nullable = options.some((o) => o.type === 'null');
  const real = options.filter((o) => o.type !== 'null');
  if (real.length === 1) {
    const s = real[0];
    if (s.type === 'boolean') return { kind: 'boolean', nullable };
    if (s.enum && (s.type === 'string' || s.type === undefined)) return { kind: 'enum', options: s.enum.map(String), nullable };
    if (s.type === 'integer' || s.type === 'number') {
      return {
        kind: s.type,
        min: s.minimum ?? (s.exclusiveMinimum !== undefined ? s.exclusiveMinimum : undefined),
        max: s.maximum ?? s.exclusiveMaximum,
        nullable,
      };
    }
  }
  const enums = real.flatMap((o) => (o.enum ? o.enum.map(String) : []));
  return { kind: 'text', hint: real.map(describe).join(' or '), enums, nullable };
}

/** "3" → 3, "3, 5" / "3x5" / "[3,5]" → [3, 5], "same" → "same", "" → undefined (the default). */
export function parseText(text: string, field: Extract<FieldKind, { kind: 'text' }>): unknown {
  const t = text.trim();
  if (t === '') return undefined;
  if (field.nullable && (t === 'null' || t === 'none' || t === 'None')) return null;
  if (field.enums.includes(t)) return t;
  if (t === 'true' || t === 'false') return t === 'true';
  const inner = t.replace(/^[[(]|[\])]$/g, '');
  const parts = inner.split(/\s*[,×x*]\s*|\s+/).filter(Boolean);
  if (parts.length > 0 && parts.every((p) => /^-?\d+(\.\d+)?(e-?\d+)?$/i.test(p))) {
    const nums = parts.map(Number);
    const wantsList = /^[[(]/.test(t) || parts.length > 1 || field.hint.startsWith('[');
    return wantsList ? nums : nums[0];
  }
  return t;
}

export function formatValue(v: unknown): string {
  if (v === undefined) return '';
  if (v === null) return '';
  if (Array.isArray(v)) return v.map(formatValue).join(', ');
  return String(v);
}
