// Asks the backend's own Python for a JSON document (as gen-api.mjs does for the OpenAPI spec), so
// unit tests read the backend's real schemas rather than a copy.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

export function backendJson(code) {
  const python = process.env.LAYERLAB_PYTHON ?? `${root}.venv/bin/python`;
  return JSON.parse(execFileSync(python, ['-c', `import json\n${code}`], { cwd: root, maxBuffer: 64 * 1024 * 1024 }).toString());
}
