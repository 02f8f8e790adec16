// Light or dark: the person's choice (kept in the browser), or the system's preference.
import { create } from 'zustand';
import { readPref, writePref } from './prefs';

export type ThemeChoice = 'system' | 'light' | 'dark';
export type Theme = 'light' | 'dark';

const query = () => (typeof window !== 'undefined' && window.matchMedia ? window.matchMedia('(prefers-color-scheme: dark)') : null);
const systemTheme = (): Theme => (query()?.matches ? 'dark' : 'light');
const resolve = (choice: ThemeChoice): Theme => (choice === 'system' ? systemTheme() : choice);

const saved = readPref('layerlab_theme');
const initial: ThemeChoice = saved === 'light' || saved === 'dark' ? saved : 'system';

export const useTheme = create<{ choice: ThemeChoice; theme: Theme }>()(() => ({ choice: initial, theme: resolve(initial) }));

function apply() {
  document.documentElement.dataset.theme = useTheme.getState().theme;
}

/** The next choice in the toggle's cycle: system → dark → light → system. */
export function cycleTheme() {
  const next: ThemeChoice = { system: 'dark', dark: 'light', light: 'system' }[useTheme.getState().choice] as ThemeChoice;
  writePref('layerlab_theme', next === 'system' ? null : next);
  useTheme.setState({ choice: next, theme: resolve(next) });
  apply();
}

/** Applies the theme to the page and follows the system's changes; returns the stop function. */
export function watchTheme(): () => void {
  apply();
  const q = query();
  const onChange = () => {
    if (useTheme.getState().choice !== 'system') return;
    useTheme.setState({ theme: systemTheme() });
    apply();
  };
  q?.addEventListener('change', onChange);
  return () => q?.removeEventListener('change', onChange);
}
