// Node ids double as PyTorch attribute names, so they are Python identifiers: `conv2d_3`.

/** `Conv2d` → `conv2d`, `BatchNorm2d` → `batch_norm2d`, `ReLU` → `relu`. */
export function opStem(op: string): string {
  return op
    .replace(/PReLU/g, 'Prelu')
    .replace(/ReLU/g, 'Relu')
    .replace(/SiLU/g, 'Silu')
    .replace(/GELU/g, 'Gelu')
    .replace(/ELU/g, 'Elu')
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1_$2')
    .toLowerCase()
    .replace(/[^a-z0-9_]/g, '_');
}

/** The next free id for an op: one more than the highest `<stem>_<n>` already taken. */
export function nextId(op: string, taken: Iterable<string>): string {
  const stem = opStem(op);
  const used = new Set(taken);
  let max = 0;
  const re = new RegExp(`^${stem}_(\\d+)$`);
  for (const id of used) {
    const m = re.exec(id);
    if (m) max = Math.max(max, Number(m[1]));
  }
  let n = max + 1;
  while (used.has(`${stem}_${n}`)) n += 1;
  return `${stem}_${n}`;
}

/** Ids for several new nodes at once, none colliding with each other or with `taken`. */
export function allocateIds(ops: string[], taken: Iterable<string>): string[] {
  const used = new Set(taken);
  return ops.map((op) => {
    const id = nextId(op, used);
    used.add(id);
    return id;
  });
}
