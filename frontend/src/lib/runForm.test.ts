// The run form from the backend's own /api/run-config document (asked of the backend's Python,
// as `npm run gen:api` does), so the test follows RunConfig as it is, not a copy of it.
import { renderToStaticMarkup } from 'react-dom/server';
import { createElement } from 'react';
import { describe, expect, it } from 'vitest';
import { backendJson } from '../../scripts/backend-json.mjs';
import { RunForm } from '../components/RunForm';
import { type ConfigDraft, type RunConfigForm, configDiff, formModel, getAt, isShown, setAt, settingSchema, valueOf } from './runForm';

const doc = backendJson(
  'from layerlab.train.form import run_config_form; print(json.dumps(run_config_form().model_dump(mode="json", by_alias=True)))',
) as RunConfigForm;
const groups = formModel(doc);
const field = (path: string) => groups.flatMap((g) => g.fields).find((f) => f.path === path)!;

describe('formModel', () => {
  it('places settings in the groups the API names, common ones first-class', () => {
    expect(groups.map((g) => g.id)).toEqual(['data', 'loss', 'optimizer', 'schedule', 'length', 'hardware', 'regularization', 'init']);
    expect(field('optimizer.lr')).toMatchObject({ label: 'Learning rate', common: true, default: 1e-3 });
    expect(field('optimizer.lr').kind).toMatchObject({ kind: 'number', nullable: false });
    expect(field('optimizer.momentum').common).toBe(false);
    expect(field('epochs').kind).toMatchObject({ kind: 'integer', nullable: true });
    expect(field('optimizer.name').kind).toMatchObject({ kind: 'enum', options: ['sgd', 'adam', 'adamw', 'rmsprop'] });
    expect(field('init.scheme').default).toBe('default');
  });

  it('a list of tagged steps (augmentation) offers each kind with its own settings', () => {
    const augment = field('data.augment');
    expect(augment.variants?.map((v) => v.tag)).toContain('RandomCrop');
    const crop = augment.variants!.find((v) => v.tag === 'RandomCrop')!;
    expect(crop.fields.map((f) => [f.path, f.kind.kind, f.default])).toContainEqual(['padding', 'integer', 4]);
    expect(field('optimizer.lr').variants).toBeNull();
  });

  it('follows $ref and `| null` into nested settings', () => {
    expect(settingSchema(doc.schema, 'init.std').anyOf?.some((o) => o.type === 'null')).toBe(true);
    expect(() => settingSchema(doc.schema, 'optimizer.learning_rate')).toThrow(/no setting optimizer.learning_rate/);
  });
});

describe('drafts', () => {
  it('sets and clears nested settings without touching the rest', () => {
    let d = setAt({}, 'optimizer.lr', 0.01);
    d = setAt(d, 'optimizer.name', 'sgd');
    expect(d).toEqual({ optimizer: { lr: 0.01, name: 'sgd' } });
    d = setAt(setAt(d, 'optimizer.lr', undefined), 'optimizer.name', undefined);
    expect(d).toEqual({});
    expect(valueOf({}, field('data.batch_size'))).toBe(64);
    expect(getAt({ init: null }, 'init.scheme')).toBeUndefined();
  });

  it('the diff lists only settings that differ, defaults filled in', () => {
    const rows = configDiff([{ optimizer: { lr: 0.001 } }, { optimizer: { lr: 0.01 }, epochs: 10 }], groups);
    expect(rows.map((r) => [r.field.path, r.values])).toEqual([['optimizer.lr', [0.001, 0.01]]]);
  });
});

describe('RunForm', () => {
  it('renders a labelled control for every setting, with the schema default as its value', () => {
    const html = renderToStaticMarkup(createElement(RunForm, { groups, config: {}, onChange: () => {}, datasets: null, id: 'f' }));
    for (const g of doc.groups)
      for (const f of g.fields) {
        if (f.shown_when) {
          // shown once the settings it depends on hold a value it is used with
          const config = Object.entries(f.shown_when).reduce((c, [path, values]) => setAt(c, path, values[0]), {} as ConfigDraft);
          const shown = renderToStaticMarkup(createElement(RunForm, { groups, config, onChange: () => {}, datasets: null, id: 'f' }));
          expect(shown).toContain(`aria-label="${f.label}"`);
        } else expect(html).toContain(`aria-label="${f.label}"`);
      }
    expect(html).toMatch(/aria-label="Learning rate"[^>]*value="0.001"/);
    expect(html).toMatch(/aria-label="Batch size"[^>]*value="64"/);
    expect(html).not.toContain('disabled');
  });

  it('augmentation steps get their own labelled controls', () => {
    const config = { data: { augment: [{ op: 'RandomCrop', padding: 2 }, { op: 'RandomHorizontalFlip' }] } };
    const html = renderToStaticMarkup(createElement(RunForm, { groups, config, onChange: () => {}, datasets: null, id: 'f' }));
    expect(html).toMatch(/aria-label="Augment step 1"[^>]*>.*<option value="RandomCrop" selected/);
    expect(html).toMatch(/aria-label="RandomCrop Padding"[^>]*value="2"/);
    expect(html).toMatch(/aria-label="RandomHorizontalFlip P"[^>]*value="0.5"/);
  });

  it('a setting that does nothing for the current choice is not shown, nor listed as a difference', () => {
    const render = (config: ConfigDraft) => renderToStaticMarkup(createElement(RunForm, { groups, config, onChange: () => {}, datasets: null, id: 'f' }));
    expect(valueOf({}, field('optimizer.name'))).toBe('adamw');
    expect(render({})).not.toContain('aria-label="Momentum"');
    expect(render({})).toContain('aria-label="Betas"');
    const sgd = render({ optimizer: { name: 'sgd' } });
    expect(sgd).toContain('aria-label="Momentum"');
    expect(sgd).toContain('aria-label="Nesterov"');
    expect(sgd).not.toContain('aria-label="Betas"');
    expect(render({ loss: { name: 'smooth_l1' } })).toContain('aria-label="Smooth L1 beta"');
    expect(render({})).not.toContain('aria-label="Smooth L1 beta"');
    expect(isShown(field('init.std'), { init: { scheme: 'normal' } }, groups)).toBe(true);
    expect(isShown(field('init.std'), { init: null }, groups)).toBe(false);
    // two AdamW runs that differ only in a momentum AdamW never read: no difference to show
    expect(configDiff([{ optimizer: { momentum: 0.5 } }, { optimizer: { momentum: 0.9 } }], groups)).toEqual([]);
    const rows = configDiff([{ optimizer: { name: 'sgd', momentum: 0.5 } }, { optimizer: { momentum: 0.9 } }], groups);
    expect(rows.map((r) => r.field.path)).toEqual(['optimizer.name', 'optimizer.momentum']);
  });

  it('read-only shows a run config as it is', () => {
    const html = renderToStaticMarkup(createElement(RunForm, { groups, config: { optimizer: { lr: 0.3 }, epochs: 7 }, datasets: null, id: 'f' }));
    expect(html).toMatch(/aria-label="Learning rate"[^>]*disabled=""[^>]*value="0.3"/);
    expect(html).toMatch(/aria-label="Epochs"[^>]*value="7"/);
  });
});
