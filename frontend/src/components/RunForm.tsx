// The run settings, drawn from RunConfig's JSON Schema as the API serves it: every setting, in
// its group, the common ones shown and the rest under "advanced". Editable for the next run, or
// read-only for a run that exists (its exact configuration).
import { useRef, useState } from 'react';
import { api } from '../api/client';
import type { DatasetList } from '../api/types';
import { formatShape } from '../lib/format';
import { training } from '../state/trainingStore';
import { numericRule } from '../lib/numeric';
import { formatValue, parseText } from '../lib/paramFields';
import { type ConfigDraft, type FieldModel, type GroupModel, getAt, isShown, setAt, valueOf } from '../lib/runForm';
import { NumericInput } from './NumericInput';
import './training.css';

interface Props {
  groups: GroupModel[];
  config: ConfigDraft;
  /** Absent: read-only. */
  onChange?: (path: string, value: unknown) => void;
  onValidity?: (path: string, error: string | null) => void;
  datasets: DatasetList | null;
  /** Prefix for test ids and the advanced toggles, so two forms on one page stay apart. */
  id: string;
}

export function RunForm({ groups, config, onChange, onValidity, datasets, id }: Props) {
  const readOnly = !onChange;
  return (
    <div className={`run-form${readOnly ? ' read-only' : ''}`} data-testid={id}>
      {groups.map((g) => {
        const shown = g.fields.filter((f) => isShown(f, config, groups)); // not those that do nothing now
        const common = shown.filter((f) => f.common);
        const advanced = shown.filter((f) => !f.common);
        return (
          <fieldset key={g.id} className="run-group" data-group={g.id}>
            <legend>{g.title}</legend>
            <div className="run-fields">
              {common.map((f) => (
                <Setting key={f.path} field={f} config={config} onChange={onChange} onValidity={onValidity} datasets={datasets} id={id} />
              ))}
            </div>
            {advanced.length > 0 && (
              <details className="advanced">
                <summary>
                  advanced <span className="muted">({advanced.length})</span>
                </summary>
                <div className="run-fields">
                  {advanced.map((f) => (
                    <Setting key={f.path} field={f} config={config} onChange={onChange} onValidity={onValidity} datasets={datasets} id={id} />
                  ))}
                </div>
              </details>
            )}
          </fieldset>
        );
      })}
    </div>
  );
}

function Setting({ field, config, onChange, onValidity, datasets, id }: { field: FieldModel } & Omit<Props, 'groups'>) {
  const value = valueOf(config, field);
  const readOnly = !onChange;
  const set = (v: unknown) => onChange?.(field.path, v);
  const testId = `${id}-${field.path}`;
  if (field.widget === 'dataset') return <DatasetSetting field={field} config={config} onChange={onChange} datasets={datasets} testId={testId} />;
  if (field.variants) return <StepList field={field} steps={(value as ConfigDraft[] | undefined) ?? []} onChange={onChange && set} datasets={datasets} testId={testId} />;
  const k = field.kind;
  let control: React.ReactNode;
  if (k.kind === 'boolean') {
    control = <input type="checkbox" aria-label={field.label} checked={Boolean(value)} disabled={readOnly} data-testid={testId} onChange={(e) => set(e.target.checked)} />;
  } else if (k.kind === 'enum') {
    control = (
      <select aria-label={field.label} value={value == null ? '' : String(value)} disabled={readOnly} data-testid={testId} onChange={(e) => set(e.target.value === '' ? null : e.target.value)}>
        {k.nullable && <option value="">—</option>}
        {k.options.map((o) => (
          <option key={o} value={o}>
            {o}
          </option>
        ))}
      </select>
    );
  } else if (k.kind === 'integer' || k.kind === 'number') {
    const rule = numericRule(field.schema);
    control = (
      <NumericInput
        {...rule}
        label={field.label}
        value={value as number | null | undefined}
        placeholder={rule.nullable ? 'none' : `default ${formatValue(field.default)}`}
        disabled={readOnly}
        testId={testId}
        onChange={(v) => set(v)}
        onValidity={(e) => onValidity?.(field.path, e)}
      />
    );
  } else {
    control = <TextSetting label={field.label} value={value} field={field} readOnly={readOnly} testId={testId} onChange={set} />;
  }
  return (
    <label className={`run-field${k.kind === 'boolean' ? ' inline' : ''}`} title={field.schema.description ?? field.path}>
      <span className="field-name">{field.label}</span>
      {control}
    </label>
  );
}

function TextSetting(props: { label: string; value: unknown; field: FieldModel; readOnly: boolean; testId: string; onChange: (v: unknown) => void }) {
  const k = props.field.kind;
  const [text, setText] = useState<string | null>(null);
  return (
    <input
      type="text"
      aria-label={props.label}
      value={text ?? formatValue(props.value)}
      disabled={props.readOnly}
      data-testid={props.testId}
      onFocus={() => setText(formatValue(props.value))}
      onBlur={() => setText(null)}
      onChange={(e) => {
        setText(e.target.value);
        props.onChange(k.kind === 'text' ? parseText(e.target.value, k) : e.target.value);
      }}
    />
  );
}

/** The dataset: a built-in set or an upload (which sets data.upload too), and a file picker. */
function DatasetSetting({ field, config, onChange, datasets, testId }: { field: FieldModel; config: ConfigDraft; onChange?: Props['onChange']; datasets: DatasetList | null; testId: string }) {
  const [uploadError, setUploadError] = useState<string | null>(null);
  const file = useRef<HTMLInputElement>(null); // the browser's own file control says "No file chosen", cut short here
  const accepts = datasets?.accepts ?? [];
  const dataset = String(valueOf(config, field));
  const upload = getAt(config, 'data.upload') as { path?: string } | null | undefined;
  const options = field.kind.kind === 'enum' ? field.kind.options.filter((o) => o !== 'upload') : [];
  const choose = (name: string, uploadId: string | null) => {
    onChange?.('data.dataset', name);
    onChange?.('data.upload', uploadId ? { path: uploadId } : undefined);
  };
  const ds = dataset === 'upload' ? datasets?.uploads.find((u) => u.id === upload?.path) : datasets?.builtin.find((d) => d.name === dataset);
  return (
    <label className="run-field wide" title={field.schema.description ?? field.path}>
      <span className="field-name">{field.label}</span>
      <span className="row">
        <select
          aria-label={field.label}
          value={dataset === 'upload' ? `upload:${upload?.path ?? ''}` : dataset}
          disabled={!onChange}
          data-testid={testId === 'run-form-data.dataset' ? 'dataset' : testId}
          onChange={(e) => {
            const v = e.target.value;
            if (v.startsWith('upload:')) choose('upload', v.slice('upload:'.length));
            else choose(v, null);
          }}
        >
          {options.map((o) => (
            <option key={o} value={o}>
              {o}
            </option>
          ))}
          {dataset === 'upload' && !datasets?.uploads.some((u) => u.id === upload?.path) && <option value={`upload:${upload?.path ?? ''}`}>upload {upload?.path}</option>}
          {datasets?.uploads.map((u) => (
            <option key={u.id} value={`upload:${u.id}`}>
              {u.filename} (upload)
            </option>
          ))}
        </select>
        {onChange && (
          <button type="button" className="small" aria-label="Upload a dataset" title={`Upload a dataset: ${accepts.join(', ')} (see the training docs)`} onClick={() => file.current?.click()}>
            Upload…
          </button>
        )}
        {onChange && (
          <input
            ref={file}
            type="file"
            accept={accepts.join(',')}
            hidden
            data-testid="dataset-file"
            onChange={async (e) => {
              const f = e.target.files?.[0];
              e.target.value = '';
              if (!f) return;
              try {
                setUploadError(null);
                const info = await api.uploadDataset(f);
                await training.loadDatasets();
                choose('upload', info.id);
              } catch (err) {
                setUploadError(err instanceof Error ? err.message : String(err));
              }
            }}
          />
        )}
      </span>
      {ds && (
        <span className="muted">
          samples {formatShape(ds.sample_shape)}, {ds.task}
          {ds.num_classes ? `, ${ds.num_classes} classes` : ''}
        </span>
      )}
      {uploadError && <span className="node-error">{uploadError}</span>}
    </label>
  );
}

/** An ordered list of tagged steps (augmentation): add, pick each step's kind, set its settings. */
function StepList({ field, steps, onChange, datasets, testId }: { field: FieldModel; steps: ConfigDraft[]; onChange?: (v: unknown) => void; datasets: DatasetList | null; testId: string }) {
  const variants = field.variants!;
  const tagKey = variants[0]?.tagKey ?? 'op';
  const put = (next: ConfigDraft[]) => onChange?.(next);
  return (
    <div className="run-field wide step-list" role="group" aria-label={field.label} data-testid={testId} title={field.schema.description}>
      <span className="field-name">{field.label}</span>
      {steps.length === 0 && <span className="muted">none</span>}
      <ol>
        {steps.map((step, i) => {
          const variant = variants.find((v) => v.tag === step[tagKey]);
          return (
            <li key={i} className="step">
              <span className="row">
                <select
                  aria-label={`${field.label} step ${i + 1}`}
                  value={String(step[tagKey])}
                  disabled={!onChange}
                  onChange={(e) => put(steps.map((s, j) => (j === i ? { [tagKey]: e.target.value } : s)))}
                >
                  {variants.map((v) => (
                    <option key={v.tag} value={v.tag}>
                      {v.tag}
                    </option>
                  ))}
                </select>
                {onChange && (
                  <button type="button" className="small" aria-label={`Remove ${field.label} step ${i + 1}`} onClick={() => put(steps.filter((_, j) => j !== i))}>
                    ✕
                  </button>
                )}
              </span>
              {variant && variant.fields.length > 0 && (
                <div className="run-fields">
                  {variant.fields.map((f) => (
                    <Setting
                      key={f.path}
                      field={f}
                      config={step}
                      onChange={onChange && ((path, v) => put(steps.map((s, j) => (j === i ? setAt(s, path, v) : s))))}
                      datasets={datasets}
                      id={`${testId}-${i}`}
                    />
                  ))}
                </div>
              )}
            </li>
          );
        })}
      </ol>
      {onChange && (
        <select
          aria-label={`Add ${field.label} step`}
          value=""
          onChange={(e) => e.target.value && put([...steps, { [tagKey]: e.target.value }])}
        >
          <option value="">+ add a step…</option>
          {variants.map((v) => (
            <option key={v.tag} value={v.tag} title={v.description}>
              {v.tag}
            </option>
          ))}
        </select>
      )}
    </div>
  );
}
