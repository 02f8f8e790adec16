/// <reference types="vitest/config" />
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';
import { fileURLToPath } from 'node:url';

const backend = process.env.LAYERLAB_BACKEND ?? 'http://127.0.0.1:8000';

export default defineConfig({
  plugins: [react()],
  build: {
    // The backend serves the built editor at `/`.
    outDir: fileURLToPath(new URL('../backend/layerlab/static', import.meta.url)),
    emptyOutDir: true,
    // React, React Flow and uPlot in one file: ~190 KB gzip, loaded once.
    chunkSizeWarningLimit: 700,
  },
  server: {
    proxy: {
      '/api': { target: backend, changeOrigin: true, ws: true },
    },
  },
  test: {
    include: ['src/**/*.test.ts', 'src/**/*.test.tsx'],
    environment: 'node',
  },
});
