// Builds the Node entry points (benchmark, command line) with the same module graph as the app and
// the tests, so `?raw` shader imports work everywhere. Dependencies (the `webgpu` addon) stay external.
import { defineConfig } from 'vite';

export default defineConfig({
  publicDir: false,
  build: {
    ssr: true,
    outDir: 'dist-node',
    emptyOutDir: true,
    target: 'node20',
    minify: false,
    sourcemap: true,
    rollupOptions: {
      input: { bench: 'src/cli/bench.ts', cli: 'src/cli/main.ts' },
      output: { format: 'es', entryFileNames: '[name].js' },
    },
  },
});
