import { useEffect, useState } from 'react';
import type { GraphError, JsonSchema } from '../api/types';
import { numericRule } from '../lib/numeric';
import { classify, formatValue, parseText } from '../lib/paramFields';
import { NumericInput } from './NumericInput';

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
  const [invalid, setInvalid] = useState<string | null>(null);
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
        <NumericInput
          {...numericRule(schema)}
          // An empty field means "the default" here, also for a setting that may be null.
          nullable={false}
          label={label}
          value={set && value !== null ? Number(value) : undefined}
          placeholder={placeholder}
          compact
          onValidity={setInvalid}
          onChange={onChange}
        />
      );
      break;
    default:
      input = <TextInput value={formatValue(value)} placeholder={placeholder || field.hint} title={field.hint} onChange={(t) => onChange(parseText(t, field))} />;
  }
  return (
    <div className={`field${errors.length || invalid ? ' invalid' : ''}`} data-testid={`field-${name}`}>
      <label title={schema.description}>
        <span className="field-name">{label}</span>
        {input}
      </label>
      {schema.description && <div className="help">{schema.description}</div>}
      {invalid && (
        <div className="field-error" role="alert">
          {label}: {invalid} (not applied)
        </div>
      )}
      {errors.map((e, i) => (
        <div key={i} className="field-error">
          {e.message}
          {e.suggestion ? ` — ${e.suggestion}` : ''}
        </div>
      ))}
    </div>
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
