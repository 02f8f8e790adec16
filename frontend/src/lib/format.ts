// Display formatting only: every number shown comes from the backend's report.

export function formatShape(shape: readonly number[] | null | undefined): string {
  if (!shape) return '—';
  return shape.length ? shape.join('×') : 'scalar';
}

export function formatCount(n: number | null | undefined): string {
  if (n == null) return '—';
  const a = Math.abs(n);
  if (a >= 1e9) return `${trim(n / 1e9)}G`;
  if (a >= 1e6) return `${trim(n / 1e6)}M`;
  if (a >= 1e4) return `${trim(n / 1e3)}k`;
  return n.toLocaleString('en-US');
}

export function formatBytes(n: number | null | undefined): string {
  if (n == null) return '—';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${i === 0 ? v : trim(v)} ${units[i]}`;
}

function trim(v: number): string {
  return dropZeros(Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2));
}

export function formatNumber(v: number | null | undefined, digits = 4): string {
  if (v == null || !Number.isFinite(v)) return '—';
  return Math.abs(v) >= 1e4 || (Math.abs(v) > 0 && Math.abs(v) < 1e-3) ? v.toExponential(2) : dropZeros(v.toPrecision(digits));
}

/** '2.50' → '2.5', '3.00' → '3'; the zeros of a whole number are its own: '150' stays '150'. */
function dropZeros(text: string): string {
  return text.includes('.') ? text.replace(/\.?0+$/, '') : text;
}
