// Starting graphs: the JSON examples committed in the repository's examples/ folder, bundled.
import type { GraphDoc } from '../api/types';

const files = import.meta.glob('../../../examples/*.json', { eager: true, import: 'default' }) as Record<string, unknown>;

export interface Template {
  key: string;
  doc: GraphDoc;
}

export const templates: Template[] = Object.entries(files)
  .map(([path, raw]) => ({ key: path.split('/').pop()!.replace(/\.json$/, ''), raw: raw as Partial<GraphDoc> }))
  .filter(({ raw }) => raw && Array.isArray(raw.nodes))
  .map(({ key, raw }) => ({
    key,
    doc: { format: 'layerlab.graph/1', name: raw.name ?? key, nodes: raw.nodes!, edges: raw.edges ?? [] } as GraphDoc,
  }))
  .sort((a, b) => a.key.localeCompare(b.key));
