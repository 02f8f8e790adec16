// What a person types into a numeric field, read strictly: "1e-3", ".001", "3e-4" and "-2" are
// numbers; "1e-", "-", "." and "1,5" are not (yet). The caller keeps the text and only takes a
// value once the text is a whole number within the schema's range.

export interface NumericRule {
  integer: boolean;
  /** Empty text means null (for a setting that may be unset) rather than "use the default". */
  nullable: boolean;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
}

export type Parsed = { ok: true; value: number | null | undefined } | { ok: false; error: string };

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

export function parseNumeric(text: string, rule: NumericRule): Parsed {
  const t = text.trim();
  if (t === '') return { ok: true, value: rule.nullable ? null : undefined };
  if (!NUMBER.test(t)) return { ok: false, error: `"${t}" is not a number` };
  const v = Number(t);
  if (!Number.isFinite(v)) return { ok: false, error: `"${t}" is out of range` };
  if (rule.integer && !Number.isInteger(v)) return { ok: false, error: `${t} is not a whole number` };
  if (rule.minimum !== undefined && v < rule.minimum) return { ok: false, error: `must be ≥ ${rule.minimum}; received ${t}` };
  if (rule.exclusiveMinimum !== undefined && v <= rule.exclusiveMinimum) return { ok: false, error: `must be > ${rule.exclusiveMinimum}; received ${t}` };
  if (rule.maximum !== undefined && v > rule.maximum) return { ok: false, error: `must be ≤ ${rule.maximum}; received ${t}` };
  if (rule.exclusiveMaximum !== undefined && v >= rule.exclusiveMaximum) return { ok: false, error: `must be < ${rule.exclusiveMaximum}; received ${t}` };
  return { ok: true, value: v };
}

export function formatNumeric(v: number | null | undefined): string {
  return v === null || v === undefined || !Number.isFinite(v) ? '' : String(v);
}

interface NumericSchema {
  type?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  anyOf?: NumericSchema[];
}

/** The rule a JSON schema (`number`, `integer`, or either `| null`) sets for a field. */
export function numericRule(schema: NumericSchema): NumericRule {
  const options = schema.anyOf ?? [schema];
  const s = options.find((o) => o.type === 'integer' || o.type === 'number') ?? schema;
  return {
    integer: s.type === 'integer',
    nullable: options.some((o) => o.type === 'null'),
    minimum: s.minimum,
    maximum: s.maximum,
    exclusiveMinimum: s.exclusiveMinimum,
    exclusiveMaximum: s.exclusiveMaximum,
  };
}
