import { defineConfig } from 'vite';

// The app: index.html -> src/main.tsx (React; Vite transpiles TSX with tsconfig's "jsx": "react-jsx"),
// and the engine in a module Web Worker (src/worker/engine.worker.ts). WGSL arrives with `?raw`.
export default defineConfig({
  build: {
    target: 'es2022',
    sourcemap: true,
  },
  worker: {
    format: 'es',
  },
  server: {
    host: '127.0.0.1',
  },
  preview: {
    host: '127.0.0.1',
    port: 4173,
    strictPort: true,
  },
});
