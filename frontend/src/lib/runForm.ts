// The run form's model, drawn from what the API serves at /api/run-config: RunConfig's JSON Schema
// (types, ranges, defaults) and the layout (groups, labels, common vs advanced). Nothing here
// knows a setting by name; a field added to RunConfig shows up by itself.
import type { JsonSchema } from '../api/types';
import type { components } from '../api/schema';
import { type FieldKind, classify } from './paramFields';

export type FormGroupDoc = components['schemas']['FormGroup'];
export interface RunConfigForm {
  schema: JsonSchema & { $defs?: Record<string, JsonSchema> };
  groups: FormGroupDoc[];
}

export interface FieldModel {
  path: string;
  label: string;
  common: boolean;
  widget: 'dataset' | null;
  /** Shown only while each of these settings holds one of these values (the API's `shown_when`). */
  shownWhen: Record<string, string[]> | null;
  schema: JsonSchema;
  kind: FieldKind;
  default: unknown;
  /** A list of tagged steps (e.g. data.augment): each kind of step and its settings. */
  variants: StepVariant[] | null;
}

export interface StepVariant {
  /** The tag's value, e.g. 'RandomCrop'. */
  tag: string;
  /** The tag's property name, e.g. 'op'. */
  tagKey: string;
  description: string | undefined;
  fields: FieldModel[];
}

export interface GroupModel {
  id: string;
  title: string;
  fields: FieldModel[];
}

type Schemaish = JsonSchema & { $ref?: string };

function deref(s: Schemaish, root: RunConfigForm['schema']): JsonSchema {
  if (!s.$ref) return s;
  const name = s.$ref.replace(/^#\/\$defs\//, '');
  const target = root.$defs?.[name];
  if (!target) throw new Error(`run config schema: unknown $ref ${s.$ref}`);
  return { ...target, ...Object.fromEntries(Object.entries(s).filter(([k]) => k !== '$ref')) };
}

/** The object schema a property holds, also through `X | null`. */
function objectOf(s: Schemaish, root: RunConfigForm['schema']): JsonSchema | null {
  const options = (s.anyOf ?? [s]).map((o) => deref(o as Schemaish, root));
  return options.find((o) => o.properties) ?? null;
}

/** The schema of one setting, e.g. 'optimizer.lr'; enum references are resolved. */
export function settingSchema(root: RunConfigForm['schema'], path: string): JsonSchema {
  let obj: JsonSchema | null = root;
  const parts = path.split('.');
  let leaf: Schemaish | undefined;
  for (let i = 0; i < parts.length; i++) {
    leaf = obj?.properties?.[parts[i]] as Schemaish | undefined;
    if (!leaf) throw new Error(`run config schema has no setting ${path}`);
    if (i < parts.length - 1) obj = objectOf(leaf, root);
  }
  const s = deref(leaf!, root);
  return s.anyOf ? { ...s, anyOf: s.anyOf.map((o) => deref(o as Schemaish, root)) } : s;
}

/** The kinds of step a list of tagged unions holds (`items: {oneOf, discriminator}`), else null. */
function stepVariants(schema: JsonSchema, root: RunConfigForm['schema']): StepVariant[] | null {
  const items = schema.items as (JsonSchema & { oneOf?: Schemaish[]; discriminator?: { propertyName: string } }) | undefined;
  if (schema.type !== 'array' || !items?.oneOf || !items.discriminator) return null;
  const tagKey = items.discriminator.propertyName;
  return items.oneOf.map((ref) => {
    const v = deref(ref, root);
    const props = Object.entries(v.properties ?? {}).filter(([k]) => k !== tagKey);
    return {
      tag: String((v.properties?.[tagKey] as JsonSchema).const),
      tagKey,
      description: v.description,
      fields: props.map(([k, ps]) => {
        const leaf = deref(ps as Schemaish, root);
        return { path: k, label: `${v.title ?? ''} ${leaf.title ?? k}`.trim(), common: true, widget: null, shownWhen: null, schema: leaf, kind: classify(leaf), default: leaf.default, variants: null };
      }),
    };
  });
}

export function formModel(doc: RunConfigForm): GroupModel[] {
  return doc.groups.map((g) => ({
    id: g.id,
    title: g.title,
    fields: g.fields.map((f) => {
      const schema = settingSchema(doc.schema, f.path);
      return {
        path: f.path,
        label: f.label,
        common: f.common ?? false,
        widget: f.widget ?? null,
        shownWhen: f.shown_when ?? null,
        schema,
        kind: classify(schema),
        default: schema.default,
        variants: stepVariants(schema, doc.schema),
      };
    }),
  }));
}

export type ConfigDraft = Record<string, unknown>;

export function getAt(obj: unknown, path: string): unknown {
  let cur = obj;
  for (const p of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[p];
  }
  return cur;
}

/** A copy of `obj` with the setting at `path` set (or removed when `value` is undefined). */
export function setAt(obj: ConfigDraft, path: string, value: unknown): ConfigDraft {
  const [head, ...rest] = path.split('.');
  const out: ConfigDraft = { ...obj };
  if (rest.length === 0) {
    if (value === undefined) delete out[head];
    else out[head] = value;
    return out;
  }
  const inner = out[head];
  const next = setAt(inner && typeof inner === 'object' ? (inner as ConfigDraft) : {}, rest.join('.'), value);
  if (Object.keys(next).length === 0) delete out[head];
  else out[head] = next;
  return out;
}

/** What the field shows: the draft's value if set, else the schema's default. */
export function valueOf(draft: ConfigDraft, field: FieldModel): unknown {
  const v = getAt(draft, field.path);
  return v === undefined ? field.default : v;
}

/** Whether a setting does something under `config`: the settings its `shownWhen` names hold one
 * of the values listed (defaults filled in). */
export function isShown(field: FieldModel, config: ConfigDraft, groups: GroupModel[]): boolean {
  if (!field.shownWhen) return true;
  return Object.entries(field.shownWhen).every(([path, values]) => {
    const control = groups.flatMap((g) => g.fields).find((f) => f.path === path);
    const value = control ? valueOf(config, control) : getAt(config, path);
    return values.includes(String(value));
  });
}

/** Every setting of a config as path → value (defaults filled in), in the form's order. */
export function flatten(config: ConfigDraft, groups: GroupModel[]): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const g of groups) for (const f of g.fields) out.set(f.path, valueOf(config, f));
  return out;
}

/** The settings whose values differ between configs (JSON-equal values are the same), leaving out
 * those that did nothing in any of them. */
export function configDiff(configs: ConfigDraft[], groups: GroupModel[]): { field: FieldModel; values: unknown[] }[] {
  const flat = configs.map((c) => flatten(c, groups));
  const rows: { field: FieldModel; values: unknown[] }[] = [];
  for (const g of groups)
    for (const f of g.fields) {
      if (!configs.some((c) => isShown(f, c, groups))) continue;
      const values = flat.map((m) => m.get(f.path));
      if (new Set(values.map((v) => JSON.stringify(v ?? null))).size > 1) rows.push({ field: f, values });
    }
  return rows;
}
