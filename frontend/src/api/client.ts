// The backend's HTTP API. Every response type comes from the generated OpenAPI schema.
import type {
  AugmentPreview,
  Catalog,
  DatasetList,
  ExportFormat,
  GraphDoc,
  GraphError,
  Metrics,
  ProjectDetail,
  ProjectSummary,
  Report,
  RunAccepted,
  RunCheck,
  RunCheckRequest,
  RunCreate,
  RunDetail,
  RunSummary,
  RunConfigFormDoc,
  ScriptView,
  UploadInfo,
  WeightsInfo,
  VersionDetail,
  VersionSummary,
} from './types';

export interface ReportOptions {
  batch_size?: number;
  optimizer?: NonNullable<NonNullable<RunCreate['config']>['optimizer']>['name'];
}

/** An API error with the server's own words: `detail` is a string or a list of graph errors. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly errors: GraphError[] = [],
  ) {
    super(message);
  }
}

function token(): string | null {
  try {
    const fromUrl = new URLSearchParams(window.location.search).get('token');
    if (fromUrl) localStorage.setItem('layerlab_token', fromUrl);
    return fromUrl ?? localStorage.getItem('layerlab_token');
  } catch {
    return null;
  }
}

function headers(extra: Record<string, string> = {}): Record<string, string> {
  const t = token();
  return t ? { ...extra, Authorization: `Bearer ${t}` } : extra;
}

async function fail(res: Response): Promise<never> {
  let message = `${res.status} ${res.statusText}`;
  let errors: GraphError[] = [];
  try {
    const body = (await res.json()) as { detail?: unknown };
    if (typeof body.detail === 'string') message = body.detail;
    else if (Array.isArray(body.detail)) {
      errors = body.detail as GraphError[];
      message = errors.map((e) => e.message ?? String((e as { msg?: string }).msg)).join('; ');
    }
  } catch {
    /* not JSON */
  }
  throw new ApiError(res.status, message, errors);
}

async function request<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
  const res = await fetch(`/api${path}`, {
    method,
    signal,
    headers: headers(body === undefined ? {} : { 'Content-Type': 'application/json' }),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) return fail(res);
  if (res.status === 204) return undefined as T;
  return (await res.json()) as T;
}

async function postFile<T>(path: string, file: File): Promise<T> {
  const body = new FormData();
  body.append('file', file);
  const res = await fetch(`/api${path}`, { method: 'POST', headers: headers(), body });
  if (!res.ok) return fail(res);
  return (await res.json()) as T;
}

export const api = {
  catalog: () => request<Catalog>('GET', '/catalog'),
  /** RunConfig's JSON Schema and its form's layout. */
  runConfigForm: () => request<RunConfigFormDoc>('GET', '/run-config'),
  /** Shapes, costs and errors; the memory estimate assumes this batch size and optimizer. */
  report: (graph: GraphDoc, signal?: AbortSignal, opts: ReportOptions = {}) => {
    const q = new URLSearchParams();
    if (opts.batch_size) q.set('batch_size', String(opts.batch_size));
    if (opts.optimizer) q.set('optimizer', opts.optimizer);
    const qs = q.toString();
    return request<Report>('POST', `/graphs/report${qs ? `?${qs}` : ''}`, graph, signal);
  },

  /** The exported file as a Blob, with the server's file name. A training script or notebook
   *  ('script', 'ipynb') takes the run's settings too. */
  async export(
    graph: GraphDoc,
    format: ExportFormat,
    signal?: AbortSignal,
    config?: Record<string, unknown>,
  ): Promise<{ blob: Blob; filename: string }> {
    const res = await fetch(`/api/export?format=${format}`, {
      method: 'POST',
      signal,
      headers: headers({ 'Content-Type': 'application/json' }),
      body: JSON.stringify(config === undefined ? graph : { graph, config }),
    });
    if (!res.ok) return fail(res);
    const disposition = res.headers.get('Content-Disposition') ?? '';
    const filename = /filename="([^"]+)"/.exec(disposition)?.[1] ?? `model.${format}`;
    return { blob: await res.blob(), filename };
  },

  /** The training script of the graph under these run settings, with each node's lines. */
  trainingScript: (graph: GraphDoc, config: Record<string, unknown>, signal?: AbortSignal) =>
    request<ScriptView>('POST', '/graphs/script', { graph, config }, signal),

  datasets: () => request<DatasetList>('GET', '/datasets'),
  /** A few training images as loaded and through the run's random augment steps. */
  augmentPreview: (data: Record<string, unknown>, signal?: AbortSignal) =>
    request<AugmentPreview>('POST', '/datasets/augment-preview', { data, samples: 4, draws: 3 }, signal),
  uploadDataset: (file: File) => postFile<UploadInfo>('/datasets', file),
  /** Weights to start a run from: .safetensors, or a .pt state_dict (read as weights only). */
  uploadWeights: (file: File) => postFile<WeightsInfo>('/runs/weights', file),

  projects: {
    list: () => request<ProjectSummary[]>('GET', '/projects'),
    get: (id: string) => request<ProjectDetail>('GET', `/projects/${id}`),
    create: (name: string, graph: GraphDoc | null) => request<ProjectDetail>('POST', '/projects', { name, graph }),
    rename: (id: string, name: string) => request<ProjectSummary>('PATCH', `/projects/${id}`, { name }),
    remove: (id: string) => request<void>('DELETE', `/projects/${id}`),
    versions: (id: string) => request<VersionSummary[]>('GET', `/projects/${id}/versions`),
    version: (id: string, v: number) => request<VersionDetail>('GET', `/projects/${id}/versions/${v}`),
    save: (id: string, graph: GraphDoc, message?: string) =>
      request<VersionDetail>('POST', `/projects/${id}/versions`, { graph, ...(message ? { message } : {}) }),
  },

  runs: {
    create: (body: RunCreate) => request<RunAccepted>('POST', '/runs', body),
    /** Would a run of this graph under these settings start? The start's own checks, as a list. */
    check: (graph: GraphDoc, config: RunCheckRequest['config'], signal?: AbortSignal) =>
      request<RunCheck>('POST', '/runs/check', { graph, config }, signal),
    list: (projectId?: string) => request<RunSummary[]>('GET', `/runs${projectId ? `?project_id=${encodeURIComponent(projectId)}` : ''}`),
    get: (id: string) => request<RunDetail>('GET', `/runs/${id}`),
    stop: (id: string) => request<RunSummary>('POST', `/runs/${id}/stop`),
    pause: (id: string) => request<RunSummary>('POST', `/runs/${id}/pause`),
    resume: (id: string) => request<RunSummary>('POST', `/runs/${id}/resume`),
    /** A stopped run goes on from its checkpoint, under the same id. */
    continue: (id: string) => request<RunSummary>('POST', `/runs/${id}/continue`),
    remove: (id: string) => request<void>('DELETE', `/runs/${id}`),
    metrics: (id: string) => request<Metrics>('GET', `/runs/${id}/metrics`),
    finetune: (id: string, body: { name?: string; config?: RunCreate['config'] }) =>
      request<RunAccepted>('POST', `/runs/${id}/finetune`, body),
    /** The run's latest weights (safetensors), fetched with the auth header. */
    async checkpoint(id: string): Promise<{ blob: Blob; filename: string }> {
      const res = await fetch(`/api/runs/${id}/checkpoint`, { headers: headers() });
      if (!res.ok) return fail(res);
      const disposition = res.headers.get('Content-Disposition') ?? '';
      const filename = /filename="?([^";]+)"?/.exec(disposition)?.[1] ?? `${id}.safetensors`;
      return { blob: await res.blob(), filename };
    },
  },
};

/** The websocket URL streaming a run's events after `after`. */
export function runEventsUrl(runId: string, after: number): string {
  const proto = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
  const t = token();
  const q = new URLSearchParams({ after: String(after) });
  if (t) q.set('token', t);
  return `${proto}//${window.location.host}/api/runs/${runId}/events?${q}`;
}

/** The websocket URL of run status changes (for the run list). */
export function statusEventsUrl(): string {
  const proto = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
  const t = token();
  return `${proto}//${window.location.host}/api/events${t ? `?token=${encodeURIComponent(t)}` : ''}`;
}

export function downloadBlob(blob: Blob, filename: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
