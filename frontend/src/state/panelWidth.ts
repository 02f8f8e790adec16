import type React from 'react';
import { useRef, useState } from 'react';
import { readPref, writePref } from '../lib/prefs';

export interface PanelWidthOptions {
  /** The browser preference the width is kept under. */
  pref: string;
  min: number;
  /** The largest width for the window as it is now. */
  max: () => number;
  initial: number;
  /** Which way the panel grows when its edge is dragged: the palette's edge is on its right, the side panel's on its left. */
  grows: 'right' | 'left';
}

const STEP = 40; // px per arrow key press

/** A panel's width, dragged on its edge with the mouse or set with ← → on the focused edge, kept
 * in the browser. Returns the width and the props of the edge (a `role="separator"`). */
export function usePanelWidth({ pref, min, max, initial, grows }: PanelWidthOptions) {
  const clamp = (w: number) => Math.min(Math.max(min, max()), Math.max(min, Math.round(w)));
  const [width, setWidth] = useState(() => clamp(Number(readPref(pref)) || initial));
  const drag = useRef<{ x: number; w: number } | null>(null);
  const sign = grows === 'right' ? 1 : -1;
  const separator = {
    role: 'separator',
    'aria-orientation': 'vertical' as const,
    'aria-valuenow': width,
    'aria-valuemin': min,
    'aria-valuemax': Math.max(min, max()),
    tabIndex: 0,
    title: 'Drag to resize (or focus and use ← →)',
    onPointerDown: (e: React.PointerEvent) => {
      drag.current = { x: e.clientX, w: width };
      (e.target as HTMLElement).setPointerCapture(e.pointerId);
    },
    onPointerMove: (e: React.PointerEvent) => {
      if (drag.current) setWidth(clamp(drag.current.w + sign * (e.clientX - drag.current.x)));
    },
    onPointerUp: () => {
      if (drag.current) writePref(pref, String(width));
      drag.current = null;
    },
    onKeyDown: (e: React.KeyboardEvent) => {
      const step = e.key === 'ArrowRight' ? sign * STEP : e.key === 'ArrowLeft' ? -sign * STEP : 0;
      if (!step) return;
      e.preventDefault();
      const w = clamp(width + step);
      setWidth(w);
      writePref(pref, String(w));
    },
  };
  return { width, separator };
}
