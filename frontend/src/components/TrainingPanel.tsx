import { useEffect, useMemo, useState } from 'react';
import { ApiError, type ReportOptions, api, downloadBlob } from '../api/client';
import type { GraphError, RunConfig } from '../api/types';
import { formatNumber } from '../lib/format';
import { type ConfigDraft, valueOf } from '../lib/runForm';
import { editor, useEditor } from '../state/editorStore';
import { useGraphKey } from '../state/graphKey';
import { projects } from '../state/projectStore';
import { isTerminal } from '../state/runSeries';
import { refreshRuns, training, useTraining } from '../state/trainingStore';
import { AugmentPanel } from './AugmentPanel';
import { RunCharts } from './RunCharts';
import { RunForm } from './RunForm';
import { RunHeader, SelectedRunSettings } from './RunHeader';
import { WeightsPicker } from './WeightsPicker';

export function TrainingPanel() {
  const datasets = useTraining((s) => s.datasets);
  const form = useTraining((s) => s.form);
  const draft = useTraining((s) => s.draft);
  const invalid = useTraining((s) => s.invalid);
  const status = useTraining((s) => s.status);
  const activeRunId = useTraining((s) => s.activeRunId);
  const error = useTraining((s) => s.error);
  const valid = useEditor((s) => s.report?.valid ?? false);

  useEffect(() => {
    void training.loadForm();
    void training.loadDatasets();
    void refreshRuns();
  }, []);
  const fields = useMemo(() => new Map((form ?? []).flatMap((g) => g.fields.map((f) => [f.path, f] as const))), [form]);
  const setting = (path: string) => {
    const f = fields.get(path);
    return f ? valueOf(draft, f) : undefined;
  };
  const batchSize = setting('data.batch_size') as number | undefined;
  const optimizer = setting('optimizer.name') as ReportOptions['optimizer'];
  // The status bar's memory estimate follows the batch size and optimizer chosen here.
  useEffect(() => {
    if (batchSize && batchSize >= 1 && optimizer) editor.setReportOptions({ batch_size: batchSize, optimizer });
  }, [batchSize, optimizer]);

  const live = activeRunId !== null && !isTerminal(status) && status !== 'idle';
  const problems = Object.entries(invalid);
  const refusals = useRunCheck(draft as RunConfig, valid && problems.length === 0 && form !== null);

  return (
    <div className="training pad" data-testid="training">
      <h2>Train</h2>
      <RunHeader />
      <SelectedRunSettings />
      <h3>Next run</h3>
      {form ? (
        <RunForm groups={form} config={draft} onChange={training.setSetting} onValidity={training.setInvalid} datasets={datasets} id="run-form" />
      ) : (
        <p className="muted">Loading the run settings…</p>
      )}
      <AugmentPanel data={draft.data as ConfigDraft | undefined} />
      {refusals.map((p, i) => (
        // the server's words: the run start would refuse with exactly these
        <div key={i} className="warning" data-testid={p.field === 'config.data' ? 'dataset-mismatch' : 'run-check-problem'}>
          {p.message}
          {p.suggestion && <div className="suggestion">{p.suggestion}</div>}
        </div>
      ))}
      {problems.length > 0 && (
        <div className="node-error" data-testid="settings-invalid">
          {problems.map(([path, why]) => (
            <div key={path}>
              {fields.get(path)?.label ?? path}: {why}
            </div>
          ))}
        </div>
      )}
      <WeightsPicker />
      <div className="row">
        <button
          type="button"
          className="primary"
          data-testid="train-start"
          disabled={live || !valid || problems.length > 0 || !form}
          title={!valid ? 'Fix the graph first' : problems.length ? 'Fix the settings first' : 'Saves the graph as a project version, then trains it'}
          onClick={async () => {
            const saved = await projects.save();
            if (saved) await training.start(saved.projectId, saved.version, draft as RunConfig);
          }}
        >
          ▶ Train
        </button>
        <button type="button" disabled={!live || status === 'paused'} onClick={() => void training.control('pause')} data-testid="train-pause">
          Pause
        </button>
        <button type="button" disabled={status !== 'paused'} onClick={() => void training.control('resume')} data-testid="train-resume">
          Resume
        </button>
        <button type="button" className="danger" disabled={!live} onClick={() => void training.control('stop')} data-testid="train-stop">
          Stop
        </button>
        <button
          type="button"
          disabled={status !== 'stopped'}
          title="Go on from the stopped run's checkpoint, under the same run"
          onClick={() => void training.continueRun()}
          data-testid="train-continue"
        >
          Continue
        </button>
      </div>
      <div className="muted" data-testid="train-note">
        Train saves the graph as a new project version first.
      </div>
      <RunStatusLine />
      {error && <div className="node-error">{error}</div>}
      <RunCharts />
      <RunHistory />
    </div>
  );
}

/** What would stop a run of the canvas's graph under these settings from starting, as the server
 *  answers it (the start's own checks); asked again, debounced, when either changes, and an answer
 *  to an older question never replaces a newer one. */
function useRunCheck(config: RunConfig, enabled: boolean): GraphError[] {
  const graphKey = useGraphKey();
  const configKey = useMemo(() => JSON.stringify(config), [config]);
  const [problems, setProblems] = useState<GraphError[]>([]);
  useEffect(() => {
    if (!enabled) {
      setProblems([]);
      return;
    }
    const controller = new AbortController();
    const t = setTimeout(async () => {
      try {
        const answer = await api.runs.check(editor.currentGraph(), config, controller.signal);
        if (!controller.signal.aborted) setProblems(answer.problems);
      } catch (e) {
        if (controller.signal.aborted) return;
        const message = e instanceof Error ? e.message : String(e);
        setProblems(e instanceof ApiError && e.errors.length ? e.errors : [{ message } as GraphError]);
      }
    }, 300);
    return () => {
      clearTimeout(t);
      controller.abort();
    };
  }, [graphKey, configKey, enabled]); // the request reads the graph and config those keys name
  return problems;
}

function RunStatusLine() {
  const status = useTraining((s) => s.status);
  const step = useTraining((s) => s.step);
  const total = useTraining((s) => s.totalSteps);
  const epoch = useTraining((s) => s.epoch);
  const sps = useTraining((s) => s.samplesPerS);
  const failure = useTraining((s) => s.failure);
  const warnings = useTraining((s) => s.warnings);
  const connected = useTraining((s) => s.connected);
  const runId = useTraining((s) => s.activeRunId);
  const note = useTraining((s) => s.statusNote);
  if (!runId) return <div className="muted">No run yet.</div>;
  return (
    <div className="run-status" data-testid="run-status" data-status={status}>
      <b>{status}</b>
      {note && <span data-testid="run-note"> · {note}</span>} · step <span data-testid="run-step">{step}</span>
      {total ? ` / ${total}` : ''} · epoch {epoch}
      {sps ? ` · ${Math.round(sps)} samples/s` : ''}
      {connected ? ' · live' : ''}
      {failure && (
        <div className="node-error">
          {failure.node ? `${failure.node}: ` : ''}
          {failure.reason}
          {failure.hint && <div className="suggestion">{failure.hint}</div>}
        </div>
      )}
      {warnings.slice(-3).map((w, i) => (
        <div key={i} className="warning">
          {w}
        </div>
      ))}
    </div>
  );
}

function RunHistory() {
  const runs = useTraining((s) => s.runs);
  const active = useTraining((s) => s.activeRunId);
  const overlays = useTraining((s) => s.overlays);
  return (
    <div className="run-history">
      <h3>Runs</h3>
      <table>
        <tbody>
          {runs.map((r) => (
            <tr key={r.id} className={r.id === active ? 'active' : ''}>
              <td>
                <input
                  type="checkbox"
                  title="Overlay this run's curves"
                  aria-label={`Compare ${r.name || r.id.slice(0, 8)}`}
                  disabled={r.id === active}
                  checked={overlays.includes(r.id)}
                  onChange={() => void training.toggleOverlay(r.id)}
                />
              </td>
              <td>
                <button type="button" className="link" onClick={() => void training.watch(r.id)}>
                  {r.name || r.id.slice(0, 8)}
                </button>
              </td>
              <td>{r.status}</td>
              <td title="validation accuracy">{r.val_accuracy != null ? `${(r.val_accuracy * 100).toFixed(1)}%` : formatNumber(r.train_loss)}</td>
              <td>
                {r.has_checkpoint && (
                  <button
                    type="button"
                    className="small"
                    title="Download the checkpoint (safetensors)"
                    data-testid="checkpoint-download"
                    onClick={async () => {
                      try {
                        const { blob, filename } = await api.runs.checkpoint(r.id);
                        downloadBlob(blob, filename);
                      } catch (e) {
                        useTraining.setState({ error: e instanceof Error ? e.message : String(e) });
                      }
                    }}
                  >
                    weights
                  </button>
                )}
              </td>
              <td>
                {r.has_checkpoint && (
                  <button type="button" className="small" title="Fine-tune from this run's checkpoint" onClick={() => void training.finetune(r.id)}>
                    fine-tune
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
