// Starting graphs: the JSON examples committed in the repository's examples/ folder, bundled.
// A template is one file there: its name and description travel in the graph itself; its shapes
// and parameter counts come from the backend's report, never from here.
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
    doc: {
      format: 'layerlab.graph/1',
      name: raw.name ?? key,
      ...(raw.description ? { description: raw.description } : {}),
      nodes: raw.nodes!,
      edges: raw.edges ?? [],
    } as GraphDoc,
  }))
  .sort((a, b) => a.key.localeCompare(b.key));

/** A readable title from a file key: `resnet_mini` → `Resnet mini`. */
export const templateTitle = (key: string) => key.charAt(0).toUpperCase() + key.slice(1).replace(/_/g, ' ');
