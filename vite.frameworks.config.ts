import { readFileSync } from 'node:fs';
import { defineConfig } from 'vite';

// The framework comparison page (bench-frameworks.html -> src/bench/frameworks/main.ts), built apart
// from the app so that TensorFlow.js and jax-js never enter dist/ (`npm run bench:frameworks`,
// scripts/bench-frameworks.mjs). Output in dist-frameworks/ (ignored).

const version = (pkg: string): string => (JSON.parse(readFileSync(new URL(`./node_modules/${pkg}/package.json`, import.meta.url), 'utf8')) as { version: string }).version;

export default defineConfig({
  define: {
    // The versions really installed, for every record the page prints.
    __FRAMEWORK_VERSIONS__: JSON.stringify({
      '@tensorflow/tfjs-core': version('@tensorflow/tfjs-core'),
      '@tensorflow/tfjs-backend-webgpu': version('@tensorflow/tfjs-backend-webgpu'),
      '@jax-js/jax': version('@jax-js/jax'),
    }),
  },
  // The app's public/ (models, demo data) is not needed here.
  publicDir: false,
  build: {
    target: 'es2022',
    outDir: 'dist-frameworks',
    emptyOutDir: true,
    rollupOptions: { input: { frameworks: 'bench-frameworks.html' } },
    // The frameworks are large; the warning says nothing useful for a benchmark page.
    chunkSizeWarningLimit: 4096,
  },
  worker: { format: 'es' },
  preview: { host: '127.0.0.1', strictPort: true },
});
