import { useEffect, useState } from 'react';
import type { GraphError, JsonSchema } from '../api/types';
import { classify, formatValue, parseText } from '../lib/paramFields';

interface Props {
  name: string;
  schema: JsonSchema;
  value: unknown;
  inferred: boolean;
  errors: GraphError[];
  onChange: (value: unknown) => void;
}

/** One param's input, chosen from its JSON schema; an absent value shows the default. */
export function ParamField({ name, schema, value, inferred, errors, onChange }: Props) {
  const field = classify(schema);
  const label = schema.title ?? name;
  const placeholder = inferred ? 'inferred from input' : schema.default != null ? `default ${formatValue(schema.default)}` : '';
  const set = value !== undefined;
  let input: React.ReactNode;
  switch (field.kind) {
    case 'boolean':
      input = (
        <input
          type="checkbox"
          checked={Boolean(set ? value : schema.default)}
          onChange={(e) => onChange(e.target.checked === Boolean(schema.default) ? undefined : e.target.checked)}
        />
      );
      break;
    case 'enum':
      input = (
        <select value={String(set ? value : (schema.default ?? ''))} onChange={(e) => onChange(e.target.value === String(schema.default) ? undefined : e.target.value)}>
          {field.nullable && <option value="">—</option>}
          {field.options.map((o) => (
            <option key={o} value={o}>
              {o}
            </option>
          ))}
        </select>
      );
      break;
    case 'integer':
    case 'number':
      input = (
        <NumberInput
          value={set && value !== null ? Number(value) : undefined}
          placeholder={placeholder}
          min={field.min}
          max={field.max}
          step={field.kind === 'integer' ? 1 : 'any'}
          onChange={onChange}
        />
      );
      break;
    default:
      input = <TextInput value={formatValue(value)} placeholder={placeholder || field.hint} title={field.hint} onChange={(t) => onChange(parseText(t, field))} />;
  }
  return (
    <div className={`field${errors.length ? ' invalid' : ''}`} data-testid={`field-${name}`}>
      <label title={schema.description}>
        <span className="field-name">{label}</span>
        {input}
      </label>
      {schema.description && <div className="help">{schema.description}</div>}
      {errors.map((e, i) => (
        <div key={i} className="field-error">
          {e.message}
          {e.suggestion ? ` — ${e.suggestion}` : ''}
        </div>
      ))}
    </div>
  );
}

function NumberInput(props: { value: number | undefined; placeholder: string; min?: number; max?: number; step: number | 'any'; onChange: (v: unknown) => void }) {
  const [text, setText] = useState(props.value === undefined ? '' : String(props.value));
  useEffect(() => {
    setText((t) => (Number(t) === props.value && t !== '' ? t : props.value === undefined ? '' : String(props.value)));
  }, [props.value]);
  return (
    <input
      type="number"
      value={text}
      placeholder={props.placeholder}
      min={props.min}
      max={props.max}
      step={props.step}
      onChange={(e) => {
        setText(e.target.value);
        if (e.target.value === '') props.onChange(undefined);
        else if (Number.isFinite(e.target.valueAsNumber)) props.onChange(e.target.valueAsNumber);
      }}
    />
  );
}

function TextInput(props: { value: string; placeholder: string; title: string; onChange: (t: string) => void }) {
  const [text, setText] = useState(props.value);
  const [focused, setFocused] = useState(false);
  useEffect(() => {
    if (!focused) setText(props.value);
  }, [props.value, focused]);
  return (
    <input
      type="text"
      value={text}
      placeholder={props.placeholder}
      title={props.title}
      onFocus={() => setFocused(true)}
      onBlur={() => setFocused(false)}
      onChange={(e) => {
        setText(e.target.value);
        props.onChange(e.target.value);
      }}
    />
  );
}
