// What the editor keeps in this browser (minimap, theme, panel widths, drafts); storage that is
// unavailable (private mode, quota) only means the value lasts this visit.
export function readPref(key: string): string | null {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

export function writePref(key: string, value: string | null): void {
  try {
    if (value === null) localStorage.removeItem(key);
    else localStorage.setItem(key, value);
  } catch {
    /* unavailable: the value lasts this visit */
  }
}
