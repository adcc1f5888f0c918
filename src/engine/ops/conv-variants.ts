// Choosing the conv kernel variant per adapter (issue 13): the CPU-shaped kernels and the GPU-shaped
// tiled ones (src/engine/ops/conv.ts) are timed on a few representative shapes, each after a warm-up,
// and the faster per direction is selected; the choice and its timings are remembered per adapter
// (key: vendor, architecture, description) in a VariantStore: in memory, localStorage in the browser,
// a JSON file in Node (conv-variants-node.ts). Until a choice is made the CPU-shaped kernels run.
import { CONV_DIRECTIONS, CONV_VARIANTS, convKernelWithVariant, convVariants, setConvVariants, type Conv2dOptions, type ConvDirection, type ConvVariant } from './conv';
import { engine, fromArray, keep, tidy, type Tensor } from '../tensor';

/** Where choices are remembered: string values by key. */
export interface VariantStore {
  get(key: string): string | null;
  set(key: string, value: string): void;
}

export function memoryStore(): VariantStore {
  const map = new Map<string, string>();
  return { get: (k) => map.get(k) ?? null, set: (k, v) => void map.set(k, v) };
}

/** The browser's localStorage, when there is one (and it works: private modes may throw). */
export function localStorageStore(): VariantStore | null {
  const ls = (globalThis as { localStorage?: Storage }).localStorage;
  if (!ls) return null;
  return {
    get: (k) => {
      try {
        return ls.getItem(k);
      } catch {
        return null;
      }
    },
    set: (k, v) => {
      try {
        ls.setItem(k, v);
      } catch {
        // full or disabled: the choice is simply not remembered
      }
    },
  };
}

export function adapterKey(info: { vendor: string; architecture: string; description: string }): string {
  // v2: the weight gradient joined the directions (a v1 entry lacks its choice).
  return `conv-variants/v2/${info.vendor}|${info.architecture}|${info.description}`;
}

/** ms of one run of a direction's kernel with a variant on a named shape. */
export type ConvTimer = (direction: ConvDirection, variant: ConvVariant, shape: string) => Promise<number>;

export interface ConvVariantReport {
  /** The adapter key the choice belongs to. */
  key: string;
  /** 'default': nothing chosen yet (CPU-shaped kernels); 'measured' now; 'stored': remembered. */
  source: 'default' | 'measured' | 'stored';
  choice: Record<ConvDirection, ConvVariant>;
  /** The representative shapes timed, in the order of the timings. */
  shapes: string[];
  /** Best ms per shape, per direction and variant (empty when not measured). */
  timings: Record<ConvDirection, Record<ConvVariant, number[]>>;
}

interface TimedShape {
  name: string;
  x: number[];
  w: number[];
  opts: Conv2dOptions;
}

/** Representative layers of the Table-1 model (decoder stack, encoder stride 2, 1x1 mixing), at batch 8 (2 and half size when quick). */
function timedShapes(quick: boolean): TimedShape[] {
  const b = quick ? 2 : 8;
  const s = quick ? 14 : 28;
  return [
    { name: `vstack 5x5 16->32 ${s}x${s} b${b}`, x: [b, 16, s, s], w: [32, 16, 5, 5], opts: { padding: 2, mask: { type: 'vstack' } } },
    { name: `3x3 s2 32->32 ${s}x${s} b${b}`, x: [b, 32, s, s], w: [32, 32, 3, 3], opts: { padding: 1, stride: 2 } },
    { name: `1x1 32->32 ${s}x${s} b${b}`, x: [b, 32, s, s], w: [32, 32, 1, 1], opts: {} },
  ];
}

function noise(shape: number[], seed: number): Tensor {
  const n = shape.reduce((a, c) => a * c, 1);
  const data = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = s / 2 ** 32 - 0.5;
  }
  return keep(fromArray(data, shape));
}

/** The real timer: each call runs the kernel once between two queue drains. Returns it and a disposer of its inputs. */
function gpuTimer(shapes: TimedShape[]): { timer: ConvTimer; dispose: () => void } {
  const inputs = new Map<string, { x: Tensor; w: Tensor; gy: Tensor; shape: TimedShape }>();
  const timer: ConvTimer = async (direction, variant, name) => {
    let t = inputs.get(name);
    if (!t) {
      const shape = shapes.find((s) => s.name === name);
      if (!shape) throw new Error(`conv variants: unknown shape ${name}`);
      const x = noise(shape.x, 1);
      const w = noise(shape.w, 2);
      const y = tidy(() => convKernelWithVariant('forward', 'cpu', x, w, x, shape.opts));
      const gy = noise(y.shape as number[], 3);
      y.dispose();
      t = { x, w, gy, shape };
      inputs.set(name, t);
    }
    const { x, w, gy, shape } = t;
    const gpu = engine().gpu;
    await gpu.sync();
    const t0 = performance.now();
    tidy(() => void convKernelWithVariant(direction, variant, x, w, gy, shape.opts));
    await gpu.sync();
    return performance.now() - t0;
  };
  const dispose = (): void => {
    for (const { x, w, gy } of inputs.values()) {
      x.dispose();
      w.dispose();
      gy.dispose();
    }
  };
  return { timer, dispose };
}

let lastReport: ConvVariantReport | null = null;

/** The current choice and, once chosen, its timings (for the Engine tab and the bench). */
export function convVariantReport(): ConvVariantReport {
  if (lastReport) return lastReport;
  const empty = { cpu: [], tiled: [] };
  return { key: '', source: 'default', choice: { ...convVariants() }, shapes: [], timings: { forward: { ...empty }, backwardInput: { ...empty }, backwardWeight: { ...empty } } };
}

function parseStored(text: string | null): Omit<ConvVariantReport, 'key' | 'source'> | null {
  if (!text) return null;
  try {
    const v = JSON.parse(text) as Omit<ConvVariantReport, 'key' | 'source'>;
    const ok = CONV_DIRECTIONS.every((d) => CONV_VARIANTS.includes(v.choice?.[d]));
    return ok && Array.isArray(v.shapes) && typeof v.timings === 'object' ? v : null;
  } catch {
    return null;
  }
}

export interface ChooseOptions {
  /** Where the choice is remembered (default: localStorage in a browser, else memory for this run). */
  store?: VariantStore;
  /** Injected by tests; default: the kernels on the engine's GPU. */
  timer?: ConvTimer;
  /** Default: adapterKey of the engine's adapter. */
  key?: string;
  /** Timed runs per (direction, variant, shape) after the warm-up (default 2); the best counts. */
  reps?: number;
  /** Smaller shapes (tests). */
  quick?: boolean;
  /** Measure even when a choice is stored. */
  remeasure?: boolean;
}

const defaultStore = memoryStore();

/**
 * Selects the conv variants for this adapter: the remembered choice when there is one, else times
 * every variant of each direction on the representative shapes and keeps the fastest (least total
 * over the shapes). Await it before recording work (it drains the queue while timing).
 */
export async function chooseConvVariants(opts: ChooseOptions = {}): Promise<ConvVariantReport> {
  const store = opts.store ?? localStorageStore() ?? defaultStore;
  const key = opts.key ?? adapterKey(engine().gpu.adapter);
  const stored = opts.remeasure ? null : parseStored(store.get(key));
  if (stored) {
    setConvVariants(stored.choice);
    lastReport = { key, source: 'stored', ...stored };
    return lastReport;
  }
  const shapes = timedShapes(opts.quick ?? false);
  const real = opts.timer ? null : gpuTimer(shapes);
  const timer = opts.timer ?? real!.timer;
  const reps = Math.max(1, opts.reps ?? 2);
  const timings = {} as Record<ConvDirection, Record<ConvVariant, number[]>>;
  const choice = {} as Record<ConvDirection, ConvVariant>;
  try {
    for (const d of CONV_DIRECTIONS) {
      timings[d] = { cpu: [], tiled: [] };
      for (const s of shapes) {
        for (const v of CONV_VARIANTS) {
          await timer(d, v, s.name); // warm-up: compiles the pipeline
          let best = Infinity;
          for (let r = 0; r < reps; r++) best = Math.min(best, await timer(d, v, s.name));
          timings[d][v].push(+best.toFixed(3));
        }
      }
      const total = (v: ConvVariant): number => timings[d][v].reduce((a, b) => a + b, 0);
      choice[d] = CONV_VARIANTS.reduce((best, v) => (total(v) < total(best) ? v : best));
    }
  } finally {
    real?.dispose();
  }
  setConvVariants(choice);
  const result = { choice, shapes: shapes.map((s) => s.name), timings };
  store.set(key, JSON.stringify(result));
  lastReport = { key, source: 'measured', ...result };
  return lastReport;
}
