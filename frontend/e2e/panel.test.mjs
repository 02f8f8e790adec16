// The training panel against the real backend: numeric fields typed key by key, the
// schema-driven run form and the created run's config, the run header and the form after a reload.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { openApp, shot, typeInto, until } from './harness.mjs';

let app, backend, page, consoleErrors;
before(async () => {
  ({ backend, page, consoleErrors } = app = await openApp());
  await until(async () => (await page.getByTestId('status-valid').textContent()).includes('valid'), 10_000, 'a valid graph');
});
after(() => app?.close());

const api = async (path) => {
  const res = await fetch(`${backend.url}/api${path}`);
  assert.equal(res.ok, true, `GET ${path}: ${res.status}`);
  return res.json();
};
const status = () => page.getByTestId('run-status').getAttribute('data-status');
const form = () => page.getByTestId('run-form');
const field = (label) => form().getByLabel(label, { exact: true });


test('the run form is drawn from the API schema: every group, labels, defaults', async () => {
  await page.getByTestId('tab-train').click();
  await form().waitFor();
  const doc = await api('/run-config');
  const legends = await form().locator('legend').allTextContents();
  assert.deepEqual(legends, doc.groups.map((g) => g.title));
  for (const title of ['Data', 'Loss', 'Optimizer', 'Schedule', 'Length & stopping', 'Hardware', 'Regularization', 'Init']) {
    assert.ok(legends.includes(title), `group ${title}`);
  }
  // Every setting the API lays out has a control named by its label; one that does nothing for the
  // current choices (momentum for AdamW) is shown only once it would.
  const fields = doc.groups.flatMap((g) => g.fields);
  const labelOf = Object.fromEntries(fields.map((f) => [f.path, f.label]));
  let conditional = 0;
  for (const f of fields) {
    let applies = true;
    for (const [path, values] of Object.entries(f.shown_when ?? {})) {
      applies &&= values.includes(await field(labelOf[path]).inputValue());
    }
    conditional += f.shown_when && !applies ? 1 : 0;
    const count = await form().getByLabel(f.label, { exact: true }).count();
    assert.equal(count, applies ? 1 : 0, `a control labelled ${f.label}${applies ? '' : ' only once it would apply'}`);
  }
  assert.ok(conditional >= 5, 'momentum, nesterov, step size, gamma... wait for the choices that read them');
  // Defaults are the schema's.
  const lrDefault = doc.schema.$defs.OptimizerConfig.properties.lr.default;
  assert.equal(await field('Learning rate').inputValue(), String(lrDefault));
  assert.equal(await field('Optimizer').inputValue(), doc.schema.$defs.OptimizerConfig.properties.name.default);
  assert.equal(await field('Epochs').inputValue(), String(doc.schema.properties.epochs.default));
  // The rarer ones wait under "advanced".
  assert.equal(await field('Betas').isVisible(), false);
  await form().locator('fieldset[data-group="optimizer"] details summary').click();
  assert.equal(await field('Betas').isVisible(), true);
  // SGD reads momentum and nesterov, not AdamW's betas: the form follows the choice, and back.
  assert.equal(await field('Optimizer').inputValue(), 'adamw');
  await field('Optimizer').selectOption('sgd');
  assert.equal(await field('Momentum').isVisible(), true);
  assert.equal(await field('Nesterov').isVisible(), true);
  assert.equal(await field('Betas').count(), 0);
  await field('Optimizer').selectOption('adamw');
  assert.equal(await field('Momentum').count(), 0);
  assert.equal(await field('Betas').isVisible(), true);
  // A generated dataset's own settings appear with it, as the dataset registry says it reads them.
  assert.equal(await field('Samples (synthetic)').count(), 0);
  await page.getByTestId('dataset').selectOption('two_moons');
  await form().locator('fieldset[data-group="data"] details summary').click();
  assert.equal(await field('Samples (synthetic)').isVisible(), true);
  assert.equal(await field('Noise (synthetic)').isVisible(), true);
  assert.equal(await field('Signal length').count(), 0, 'signals only');
  await page.getByTestId('dataset').selectOption('digits');
  assert.equal(await field('Samples (synthetic)').count(), 0);
  await form().locator('fieldset[data-group="data"] details summary').click();
  await page.setViewportSize({ width: 1280, height: 720 });
  await shot(page, 'panel_form_1280');
  await page.setViewportSize({ width: 1440, height: 900 });
  await shot(page, 'panel_form_1440');
});

test('a dataset is uploaded from the form with its button: the picker offers what the API accepts', async () => {
  await page.getByTestId('tab-train').click();
  const { accepts } = await api('/datasets');
  assert.deepEqual(accepts, ['.npz', '.csv', '.zip', '.txt']);
  const dir = await mkdtemp(path.join(tmpdir(), 'layerlab-upload-'));
  const rows = ['sepal,petal,width,height,kind'];
  for (let i = 0; i < 30; i++) rows.push(`${i % 7},${(i * 3) % 5},${i / 10},${(i % 4) + 0.5},${['a', 'b', 'c'][i % 3]}`);
  const csv = path.join(dir, 'flowers.csv');
  await writeFile(csv, rows.join('\n') + '\n');
  const button = form().getByRole('button', { name: 'Upload a dataset' });
  assert.match(await button.getAttribute('title'), /\.npz, \.csv, \.zip, \.txt/);
  assert.equal(await form().locator('input[type=file]').getAttribute('accept'), accepts.join(','));
  const [chooser] = await Promise.all([page.waitForEvent('filechooser'), button.click()]);
  await chooser.setFiles(csv);
  const dataset = page.getByTestId('dataset');
  await until(async () => (await dataset.inputValue()).startsWith('upload:'), 10_000, 'the upload chosen');
  assert.equal(await dataset.locator('option:checked').textContent(), 'flowers.csv (upload)');
  await until(async () => /samples 4, classification, 3 classes/.test(await form().textContent()), 10_000, 'its shape and task');
  await dataset.selectOption('digits');
  assert.equal(await dataset.inputValue(), 'digits');
});

test('numeric fields take 1e-3, 3e-4 and "-" typed key by key; the run gets exactly them', async () => {
  // The inspector's numeric fields are the same control.
  await page.getByTestId('tab-inspector').click();
  await page.locator('.react-flow__node[data-id="bn1"]').click();
  const eps = page.getByTestId('field-eps').getByRole('textbox');
  await typeInto(page, eps, '1e-');
  assert.equal(await eps.getAttribute('aria-invalid'), 'true', '"1e-" is not a number yet');
  assert.match(await page.getByTestId('field-eps').textContent(), /not applied/);
  await eps.pressSequentially('3', { delay: 20 });
  assert.equal(await eps.getAttribute('aria-invalid'), null);
  assert.equal(await eps.inputValue(), '1e-3');

  await page.getByTestId('tab-train').click();
  const lr = field('Learning rate');
  await typeInto(page, lr, '1e-');
  assert.equal(await lr.getAttribute('aria-invalid'), 'true');
  assert.match(await page.getByTestId('settings-invalid').textContent(), /Learning rate: "1e-" is not a number/);
  assert.equal(await page.getByTestId('train-start').isDisabled(), true, 'an invalid entry is not sent');
  await lr.pressSequentially('3', { delay: 20 });
  assert.equal(await lr.inputValue(), '1e-3');
  assert.equal(await page.getByTestId('settings-invalid').count(), 0);

  const wd = field('Weight decay');
  await typeInto(page, wd, '3e-4');
  const epochs = field('Epochs');
  await typeInto(page, epochs, '-');
  assert.equal(await epochs.getAttribute('aria-invalid'), 'true', 'a lone "-" is not sent');
  await typeInto(page, epochs, '.5');
  assert.match(await page.getByTestId('settings-invalid').textContent(), /Epochs: \.5 is not a whole number/);
  await typeInto(page, epochs, '300');
  const split = field('Validation split');
  await typeInto(page, split, '.25');
  // A list setting (augmentation) from its schema: add a step, type its probability.
  await form().locator('fieldset[data-group="data"] details summary').click();
  await form().getByLabel('Add Augment step', { exact: true }).selectOption('RandomHorizontalFlip');
  await typeInto(page, field('RandomHorizontalFlip P'), '.3');
  await shot(page, 'panel_typed');

  await page.getByTestId('train-start').click();
  await until(async () => ['running', 'queued'].includes(await status()), 30_000, 'the run to start');
  const runId = await page.evaluate(() => localStorage.getItem('layerlab_active_run'));
  const run = await api(`/runs/${runId}`);
  assert.equal(run.config.optimizer.lr, 0.001);
  assert.equal(run.config.optimizer.weight_decay, 0.0003);
  assert.equal(run.config.epochs, 300);
  assert.equal(run.config.data.val_split, 0.25);
  assert.deepEqual(run.config.data.augment, [{ op: 'RandomHorizontalFlip', p: 0.3 }]);
  assert.equal(run.graph.nodes.find((n) => n.id === 'bn1').params.eps, 0.001, 'the inspector value reached the trained graph');
});

test('the run header says where it trains; after a reload the form shows the live run, not the defaults', async () => {
  await until(async () => /samples\/s/.test(await page.getByTestId('run-speed').textContent()), 60_000, 'samples/s');
  assert.match(await page.getByTestId('run-device').textContent(), /^cpu, \d+ threads?$/);
  assert.equal(await page.getByTestId('run-precision').textContent(), 'fp32');
  // digits: 1,797 samples, a quarter held out.
  assert.match(await page.getByTestId('run-dataset').textContent(), /digits 1×8×8 · 1,348 train \/ 449 val/);

  await page.reload();
  await page.locator('.react-flow__node[data-id="fc"]').waitFor();
  await page.getByTestId('tab-train').click();
  // 300 epochs is not the default, so this waits for the live run's settings, not the schema's.
  await until(async () => (await field('Epochs').inputValue()) === '300', 15_000, "the live run's epochs in the form");
  assert.equal(await field('Learning rate').inputValue(), '0.001');
  assert.equal(await field('Weight decay').inputValue(), '0.0003');
  assert.equal(await field('Validation split').inputValue(), '0.25');
  assert.equal(await status(), 'running');
  assert.match(await page.getByTestId('run-device').textContent(), /^cpu, \d+ threads?$/);
  assert.match(await page.getByTestId('run-dataset').textContent(), /1,348 train \/ 449 val/);

  // The run's own settings, read-only; "Train again" copies them back after an edit.
  await page.getByTestId('run-settings').locator('summary').click();
  const frozen = page.getByTestId('run-settings-form').getByLabel('Learning rate', { exact: true });
  assert.equal(await frozen.inputValue(), '0.001');
  assert.equal(await frozen.isDisabled(), true);
  await typeInto(page, field('Learning rate'), '0.05');
  await page.getByTestId('train-again').click();
  await until(async () => (await field('Learning rate').inputValue()) === '0.001', 5000, 'the copied settings');
  await page.setViewportSize({ width: 1280, height: 720 });
  await shot(page, 'panel_header_1280');
  await page.setViewportSize({ width: 1440, height: 900 });

  await page.getByTestId('train-stop').click();
  await until(async () => (await status()) === 'stopped', 30_000, 'the run to stop');
});

test('block repeat takes typed text the same way', async () => {
  await page.getByTestId('tab-inspector').click();
  await page.locator('.react-flow__node[data-id="relu1"]').click();
  await page.keyboard.press('Control+g');
  const repeat = page.locator('.react-flow__node[data-id="block_1"]').getByLabel('Repeat', { exact: true });
  await repeat.waitFor();
  await typeInto(page, repeat, '-');
  assert.equal(await repeat.getAttribute('aria-invalid'), 'true');
  await typeInto(page, repeat, '3');
  assert.equal(await repeat.getAttribute('aria-invalid'), null);
  await page.getByTestId('save').click();
  const project = (await api('/projects'))[0];
  await until(async () => {
    const v = await api(`/projects/${project.id}/versions/${(await api(`/projects/${project.id}`)).latest_version}`);
    return v.graph.nodes.find((n) => n.id === 'block_1')?.params.repeat === 3;
  }, 10_000, 'repeat 3 saved');
});

test('two projects with the same node ids: training one leaves the other clean', async () => {
  const demo = (await api('/projects'))[0];
  const graph = (await api(`/projects/${demo.id}/versions/1`)).graph;
  const res = await fetch(`${backend.url}/api/projects`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ name: 'Other digits', graph }),
  });
  assert.equal(res.status, 201);

  const badges = (id) => page.locator(`.react-flow__node[data-id="${id}"] .live-badges span`).count();
  await page.getByTestId('tab-train').click();
  await typeInto(page, field('Epochs'), '300');
  await page.getByTestId('train-start').click();
  await until(async () => ['running', 'queued'].includes(await status()), 30_000, 'the run to start');
  await until(async () => (await badges('conv1')) > 0, 60_000, 'gradient badges on conv1');
  const runId = await page.evaluate(() => localStorage.getItem('layerlab_active_run'));
  const run = await api(`/runs/${runId}`);

  await page.getByTestId('tab-projects').click();
  await page.getByTestId('projects').getByRole('button', { name: 'Other digits', exact: true }).click();
  await until(async () => /Other digits/.test(await page.locator('.top-bar .project').textContent()), 10_000, 'the other project open');
  await page.locator('.react-flow__node[data-id="conv1"]').waitFor();
  await page.getByTestId('tab-train').click();
  // The first project's run goes on streaming; nothing of it reaches this canvas or panel.
  for (let i = 0; i < 5; i++) {
    for (const id of ['conv1', 'bn1', 'relu1', 'fc']) assert.equal(await badges(id), 0, `${id} shows no statistic it did not earn`);
    assert.equal(await page.locator('.run-history tbody tr').count(), 0, 'no runs of the other project');
    assert.equal(await page.getByTestId('run-header').count(), 0);
    assert.equal(Number((await page.getByTestId('chart-step-loss').getAttribute('data-points')) ?? 0), 0);
    await new Promise((r) => setTimeout(r, 500));
  }
  assert.equal((await api(`/runs/${runId}`)).status, 'running', 'the other run kept training meanwhile');
  await shot(page, 'panel_other_project_clean');

  // Back in the first project: its run, its tints.
  await page.getByTestId('tab-projects').click();
  await page.getByTestId('projects').getByRole('button', { name: demo.name, exact: true }).click();
  await until(async () => (await badges('conv1')) > 0, 30_000, "the run's badges again");
  await page.getByTestId('tab-train').click();
  assert.equal(await status(), 'running');
  assert.match(await page.getByTestId('run-version').textContent(), new RegExp(`^graph v${run.version}$`));
  assert.equal(await page.locator('[data-testid="stats-version"]').count(), 0);

  // Inside a layer: the history of its statistics as sparklines.
  await page.getByTestId('tab-inspector').click();
  await page.locator('.react-flow__node[data-id="conv1"]').click();
  const insight = page.getByTestId('layer-insight');
  await until(async () => Number(await insight.getByTestId('spark-grad_norm').getAttribute('data-points')) >= 3, 60_000, 'three grad-norm samples');
  for (const k of ['weight_norm', 'update_ratio']) assert.ok(Number(await insight.getByTestId(`spark-${k}`).getAttribute('data-points')) >= 3, k);
  assert.match(await insight.getByTestId('spark-grad_norm').locator('.spark-value').textContent(), /^\d\.\d\de[-+]\d+$/);
  await page.locator('.react-flow__node[data-id="relu1"]').click();
  await until(async () => (await page.getByTestId('layer-insight').getByTestId('spark-dead_fraction').count()) === 1, 10_000, 'dead fraction of relu1');
  await shot(page, 'panel_layer_insight');

  // An edit: the tints say which graph version they come from.
  await page.locator('.react-flow__node[data-id="fc"]').click();
  await typeInto(page, page.getByTestId('field-out_features').getByRole('textbox'), '12');
  await until(async () => (await page.locator('.react-flow__node[data-id="conv1"] [data-testid="stats-version"]').count()) === 1, 10_000, 'the version note');
  assert.equal(await page.locator('.react-flow__node[data-id="conv1"] [data-testid="stats-version"]').textContent(), `from v${run.version}`);
  await page.getByTestId('tab-train').click();
  assert.match(await page.getByTestId('run-version').textContent(), /canvas changed since/);
  await shot(page, 'panel_stale_version');
  await page.getByTestId('train-stop').click();
  await until(async () => (await status()) === 'stopped', 30_000, 'the run to stop');
  await page.getByTestId('tab-inspector').click();
  await typeInto(page, page.getByTestId('field-out_features').getByRole('textbox'), '10');
  assert.deepEqual(consoleErrors.filter((e) => !/WebSocket/.test(e)), []);
});

test('charts: compare two runs with a diff table, log scale, x by epoch and time, hover, CSV and PNG', async () => {
  await page.getByTestId('tab-train').click();
  await typeInto(page, field('Learning rate'), '0.01');
  await typeInto(page, field('Epochs'), '2');
  await page.getByTestId('train-start').click();
  await until(async () => (await status()) === 'finished', 60_000, 'the short run to finish');
  const runs = await api(`/runs?project_id=${(await api('/projects')).find((p) => p.name.startsWith('Demo')).id}`);
  const [newest, , first] = runs;
  assert.equal(newest.status, 'finished');
  const stepChart = page.getByTestId('chart-step-loss');

  // Compare with the first run of the project (lr 1e-3, 300 epochs, an older graph version).
  await page.locator('.run-history tbody tr').nth(2).getByRole('checkbox').click();
  const table = page.getByTestId('compare-table');
  await table.waitFor();
  const cells = async (path) => (await table.locator(`tr[data-path="${path}"] td`).allTextContents()).slice(1);
  assert.deepEqual(await cells('optimizer.lr'), ['0.01', '0.001']);
  assert.deepEqual(await cells('epochs'), ['2', '300']);
  assert.equal(await table.locator('tr[data-path="data.batch_size"]').count(), 0, 'equal settings are not listed');
  const versionRow = (await table.locator('tr').nth(1).locator('td').allTextContents()).slice(1);
  assert.deepEqual(versionRow, [`v${newest.version}`, `v${first.version}`]);
  const legend = await stepChart.locator('.u-legend').textContent();
  // Two runs share a name (same graph version): the legend tells them apart by their ids.
  assert.ok(legend.includes(`${newest.name} #${newest.id.slice(0, 4)} smoothed`) && legend.includes(`${first.name} smoothed`), legend);
  await page.setViewportSize({ width: 1280, height: 720 });
  await table.scrollIntoViewIfNeeded();
  await shot(page, 'panel_compare_1280');
  await page.setViewportSize({ width: 1440, height: 900 });

  // Hovering reads exact values for every visible series.
  await stepChart.scrollIntoViewIfNeeded();
  const over = await stepChart.locator('.u-over').boundingBox();
  await page.mouse.move(over.x + over.width * 0.3, over.y + over.height / 2);
  await until(async () => {
    const values = await stepChart.locator('.u-legend .u-series .u-value').allTextContents();
    return values.length === 5 && values.slice(1, 3).every((v) => /^\d/.test(v));
  }, 5000, 'hover values in the legend');

  // Log scale.
  await page.getByTestId('log-scale').check();
  await until(async () => (await page.getByTestId('chart-step-loss').getAttribute('data-log')) === 'true', 5000, 'a log y axis');
  await shot(page, 'panel_log');

  // x by epoch, then wall time: the newest run's 2 epochs end at 2 (or just under, joined with the longer run).
  const metrics = await api(`/runs/${newest.id}/metrics`);
  await page.getByTestId('x-axis').selectOption('epoch');
  const epochXs = await page.getByTestId('chart-step-loss').evaluate((el) => Number(el.dataset.firstX));
  assert.ok(Math.abs(epochXs - metrics.steps[0][0] / metrics.started.steps_per_epoch) < 1e-9, `first x ${epochXs}`);
  await page.getByTestId('x-axis').selectOption('time');
  const first0 = await page.getByTestId('chart-step-loss').evaluate((el) => Number(el.dataset.firstX));
  assert.equal(first0, 0, 'wall time starts at 0 s');

  // CSV of the visible series; PNG of the chart.
  await page.getByTestId('x-axis').selectOption('step');
  await page.getByTestId('log-scale').uncheck();
  await page.locator('.run-history tbody tr').nth(2).getByRole('checkbox').click();
  await until(async () => (await page.getByTestId('compare-table').count()) === 0, 5000, 'compare off');
  const [csvDownload] = await Promise.all([page.waitForEvent('download'), page.getByTestId('chart-step-loss-csv').click()]);
  assert.equal(csvDownload.suggestedFilename(), 'loss_per_step.csv');
  const csv = (await readFile(await csvDownload.path(), 'utf8')).trim().split('\n');
  const label = `${newest.name} #${newest.id.slice(0, 4)}`;
  assert.equal(csv[0], `step,${label} raw,${label} smoothed`);
  assert.equal(csv.length - 1, metrics.steps.length);
  assert.deepEqual(csv[1].split(',').slice(0, 2).map(Number), metrics.steps[0]);
  const [png] = await Promise.all([page.waitForEvent('download'), page.getByTestId('chart-step-loss-png').click()]);
  assert.equal(png.suggestedFilename(), 'loss_per_step.png');
  const bytes = await readFile(await png.path());
  assert.equal(bytes.subarray(1, 4).toString(), 'PNG');
  assert.deepEqual(consoleErrors.filter((e) => !/WebSocket/.test(e)), []);
});

// After the charts test: the Train tab is open and its short run is watched, finished.
test('a refresh of the run list leaves the charts alone when nothing they draw changed', async () => {
  // The watched run is finished; a run of another project trains, and each of its epochs makes
  // the page fetch this project's run list again. The charts must not be given data again for it.
  const draws = () => page.getByTestId('chart-step-loss').evaluate((el) => Number(el.dataset.draws ?? 0));
  const before = await draws();
  let listFetches = 0;
  const count = (req) => {
    if (/\/api\/runs\?project_id=/.test(req.url())) listFetches += 1;
  };
  page.on('request', count);
  const other = await (await fetch(`${backend.url}/api/projects`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ name: 'Elsewhere', graph: (await api(`/projects/${(await api('/projects')).find((p) => p.name.startsWith('Demo')).id}`)).graph }),
  })).json();
  const res = await fetch(`${backend.url}/api/runs`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ project_id: other.id, config: { epochs: 30, data: { dataset: 'digits', batch_size: 64 } } }),
  });
  assert.equal(res.status, 202);
  const { id } = await res.json();
  await until(async () => (await api(`/runs/${id}`)).status === 'finished', 60_000, 'the other run to finish');
  await until(async () => listFetches >= 3, 10_000, 'the run list fetched again as the other run went on');
  page.off('request', count);
  assert.equal(await draws(), before, 'the loss chart was not redrawn');
});
