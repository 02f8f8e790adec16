// Names for the backend's types. Everything here comes from the generated OpenAPI schema
// (src/api/schema.d.ts, `npm run gen:api`), except the catalog, which the backend serves as a
// JSON-schema document rather than a pydantic model.
import type { components } from './schema';

type S = components['schemas'];

/** The server serializes every field of its responses, defaults included. */
type Complete<T> = { [K in keyof T]-?: T[K] };

export type GraphError = S['GraphError'];
export type NodeReport = Complete<S['NodeReport']>;
export type Totals = Complete<S['Totals']>;
export type Report = Complete<Omit<S['Report'], 'nodes' | 'totals' | 'errors'>> & {
  nodes: NodeReport[];
  totals: Totals;
  errors: GraphError[];
};
export type RunConfig = S['RunConfig'];
export type RunConfigFormDoc = S['RunConfigForm'];
export type RunEvent = S['RunEvent'];
export type StepEvent = S['StepEvent'];
export type EpochEvent = S['EpochEvent'];
export type LayerStat = S['LayerStat'];
export type LayerSnapshot = S['LayerSnapshotEvent'];
export type LayerOutput = S['LayerOutput'];
export type Histogram = S['Histogram'];
export type FeatureMaps = S['FeatureMaps'];
export type InitSpec = S['InitSpec'];
export type InitScheme = NonNullable<InitSpec['scheme']>;

type WireNode = S['LayerLabGraph']['nodes'][number];
/** Every layer kind the backend knows, as a typed union ("Conv2d" | "ReLU" | ... | "Block"). */
export type OpName = WireNode['op'];

/** A node as the editor writes it: optional fields are left out rather than sent as null. */
export interface GraphNode {
  id: string;
  op: OpName;
  params?: Record<string, unknown>;
  parent?: string;
  name?: string;
  label?: string;
  frozen?: boolean;
  init?: InitSpec | InitScheme;
  position?: { x: number; y: number };
}

export interface GraphEdge {
  id?: string;
  source: string;
  target: string;
  sourceHandle?: string;
  targetHandle?: string;
}

export interface GraphDoc {
  format: 'layerlab.graph/1';
  name: string;
  description?: string;
  nodes: GraphNode[];
  edges: GraphEdge[];
}

/** The subset of JSON Schema the catalog's param schemas use. */
export interface JsonSchema {
  type?: string;
  title?: string;
  description?: string;
  default?: unknown;
  enum?: unknown[];
  const?: unknown;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minItems?: number;
  maxItems?: number;
  items?: JsonSchema;
  prefixItems?: JsonSchema[];
  anyOf?: JsonSchema[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
}

export interface OpSpec {
  op: OpName;
  category: string;
  help: string;
  torch_class: string | null;
  inputs: { min: number; max: number };
  inferred: string[];
  params: JsonSchema;
}

export interface Catalog {
  categories: string[];
  ops: OpSpec[];
}

export type ExportFormat = 'python' | 'torchscript' | 'onnx' | 'json' | 'script' | 'ipynb';
/** The training script for the code view: its text, each node's lines, the freezing lines. */
export type ScriptView = S['ScriptView'];

export type ProjectSummary = S['ProjectSummary'];
export type ProjectDetail = S['ProjectDetail'];
export type VersionSummary = S['VersionSummary'];
export type VersionDetail = S['VersionDetail'];
export type DatasetInfo = S['DatasetInfo'];
export type UploadInfo = S['UploadInfo'];
export type WeightsInfo = S['WeightsInfo'];
export type DatasetList = S['DatasetList'];
export type AugmentPreview = S['AugmentPreview'];
export type PreviewSample = S['PreviewSample'];
export type RunSummary = S['RunSummary'];
export type RunDetail = S['RunDetail'];
export type RunAccepted = S['RunAccepted'];
export type RunCheck = S['RunCheck'];
export type RunCheckRequest = S['RunCheckRequest'];
export type Metrics = S['Metrics'];
export type RunCreate = S['RunCreate'];
export type RunStatusName = RunSummary['status'];
