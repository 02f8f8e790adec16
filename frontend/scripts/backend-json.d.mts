/** The JSON that `code` (Python, with `json` imported) prints, run by the backend's interpreter. */
export function backendJson(code: string): unknown;
