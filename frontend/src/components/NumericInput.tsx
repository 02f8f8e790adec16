// The one numeric field of the app (training form, inspector, block repeat). It keeps what the
// person types as text, so "1e-" on the way to "1e-3" is never turned into NaN or another number;
// a value is handed on only when the text is a valid number, and an invalid entry is said inline.
import { useEffect, useRef, useState } from 'react';
import { type NumericRule, formatNumeric, parseNumeric } from '../lib/numeric';

interface Props extends NumericRule {
  value: number | null | undefined;
  onChange: (value: number | null | undefined) => void;
  /** Told whether the text is currently invalid (so a form can refuse to submit). */
  onValidity?: (error: string | null) => void;
  label: string;
  placeholder?: string;
  disabled?: boolean;
  className?: string;
  testId?: string;
  /** Where the inline error goes: under the field (default) or as the input's tooltip only. */
  compact?: boolean;
}

export function NumericInput({ value, onChange, onValidity, label, placeholder, disabled, className, testId, compact, ...rule }: Props) {
  const [text, setText] = useState(formatNumeric(value));
  const [error, setError] = useState<string | null>(null);
  const focused = useRef(false);
  // A value set from outside (another run's settings, undo) shows unless the person is typing.
  useEffect(() => {
    if (focused.current) return;
    setText((t) => {
      const p = parseNumeric(t, rule);
      return p.ok && p.value === value ? t : formatNumeric(value);
    });
    setError(null);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [value]);
  const report = (e: string | null) => {
    setError(e);
    onValidity?.(e);
  };
  return (
    <span className={`numeric${error ? ' invalid' : ''}${className ? ` ${className}` : ''}`}>
      <input
        type="text"
        inputMode="decimal"
        aria-label={label}
        aria-invalid={error ? true : undefined}
        title={error ?? undefined}
        value={text}
        placeholder={placeholder}
        disabled={disabled}
        data-testid={testId}
        onFocus={() => {
          focused.current = true;
        }}
        onBlur={() => {
          focused.current = false;
          const p = parseNumeric(text, rule);
          if (p.ok && p.value !== undefined) setText(formatNumeric(p.value));
          else if (p.ok) setText(formatNumeric(value));
        }}
        onChange={(e) => {
          const t = e.target.value;
          setText(t);
          const p = parseNumeric(t, rule);
          if (p.ok) {
            report(null);
            onChange(p.value);
          } else report(p.error);
        }}
      />
      {error && !compact && (
        <span className="numeric-error" role="alert">
          {label}: {error}
        </span>
      )}
    </span>
  );
}
