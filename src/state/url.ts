// The setup in the URL query, so a link reproduces it: ?preset=gated-pixelvae&size=8&latent=2&...
// (colour models: ?family=hierarchical&preset=tiny&z1=4&z2=8&...&data=demo)
// Only values that differ from the preset's defaults need to be there; unknown keys are ignored.
import type { FamilyInfo, Setup } from '../worker/client';

/** URL key of each size field, by family. */
const MNIST_KEYS: Record<string, string> = {
  imageSize: 'size',
  latentDim: 'latent',
  pixelLayers: 'layers',
  pixelWidth: 'width',
  filterSize: 'filter',
  inputFilterSize: 'ifilter',
  outputWidth: 'owidth',
  encoderWidth: 'ewidth',
  klWarmupSteps: 'warmup',
};
const HIER_KEYS: Record<string, string> = {
  imageSize: 'size',
  latent1: 'z1',
  latent2: 'z2',
  pixelWidth: 'width',
  pixelBlocks: 'pblocks',
  latentPixelWidth: 'lwidth',
  latentBlocks: 'lblocks',
  alpha1Iters: 'warm1',
  alpha2Iters: 'warm2',
};

function sizeKeys(family: string): Record<string, string> {
  return family === 'hierarchical' ? HIER_KEYS : MNIST_KEYS;
}

export const DEFAULT_RUN = { initSeed: 1, seed: 1, batchSize: 32, lr: 1e-3 };

/**
 * The sizes a new MNIST setup starts from: on a CPU (fallback) adapter the family's CPU size set
 * (a model whose latent is used within the first minute of training there), else the preset's own.
 */
export function defaultSizes(families: FamilyInfo[], fallbackAdapter: boolean): Record<string, number> | null {
  const mnist = families.find((f) => f.id === 'mnist');
  if (!mnist || !fallbackAdapter || !mnist.fallbackQuickSizes) return null;
  return mnist.quickSizes.find((q) => q.id === mnist.fallbackQuickSizes)?.sizes ?? null;
}

export interface UrlState {
  setup: Setup;
  /** Whether the URL named a preset or any size (an explicit setup, not the defaults). */
  explicit: boolean;
  sampleSeed: number;
  steps: number | null;
}

function num(params: URLSearchParams, key: string): number | undefined {
  const v = params.get(key);
  if (v === null || v.trim() === '') return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : undefined;
}

export function readUrl(families: FamilyInfo[], fallbackSizes: Record<string, number> | null, search = window.location.search): UrlState {
  const params = new URLSearchParams(search);
  const familyId = params.get('family') ?? 'mnist';
  const family = families.find((f) => f.id === familyId && f.available) ?? families.find((f) => f.available)!;
  const presetId = params.get('preset');
  const preset = family.presets.find((p) => p.id === presetId) ?? family.presets.find((p) => p.id === family.defaultPreset) ?? family.presets[0];
  // The fallback sizes (tiny MNIST on CPU adapters) apply to MNIST; colour presets are sizes themselves.
  const sizes: Record<string, number> = { ...(family.id === 'mnist' && fallbackSizes ? fallbackSizes : preset.defaults) };
  let explicit = presetId !== null;
  for (const [field, key] of Object.entries(sizeKeys(family.id))) {
    const v = num(params, key);
    if (v !== undefined) {
      sizes[field] = Math.round(v);
      explicit = true;
    }
  }
  const setup: Setup = {
    family: family.id,
    preset: preset.id,
    sizes,
    initSeed: Math.round(num(params, 'init') ?? DEFAULT_RUN.initSeed),
    seed: Math.round(num(params, 'seed') ?? DEFAULT_RUN.seed),
    batchSize: Math.round(num(params, 'batch') ?? preset.run?.batchSize ?? DEFAULT_RUN.batchSize),
    lr: num(params, 'lr') ?? preset.run?.lr ?? DEFAULT_RUN.lr,
  };
  // Your own images cannot travel in a link: a colour setup starts on a generated set (demo photos by default).
  if (family.id === 'hierarchical') setup.data = params.get('data') === 'colour-mnist' ? 'colour-mnist' : 'demo';
  for (const key of ['init', 'seed', 'batch', 'lr']) if (params.has(key)) explicit = true;
  const steps = num(params, 'steps');
  return { setup, explicit, sampleSeed: Math.round(num(params, 'sseed') ?? 1), steps: steps !== undefined ? Math.round(steps) : null };
}

/** Writes the setup into the URL (replacing the history entry), keeping unrelated parameters. */
export function writeUrl(setup: Setup, extra: { sampleSeed: number; steps: number }): void {
  const params = new URLSearchParams(window.location.search);
  params.set('preset', setup.preset);
  if (setup.family !== 'mnist') params.set('family', setup.family);
  else params.delete('family');
  for (const key of new Set([...Object.values(MNIST_KEYS), ...Object.values(HIER_KEYS)])) params.delete(key);
  for (const [field, key] of Object.entries(sizeKeys(setup.family))) {
    if (setup.sizes[field] !== undefined) params.set(key, String(setup.sizes[field]));
  }
  if (setup.family === 'hierarchical') params.set('data', setup.data ?? 'demo');
  else params.delete('data');
  params.set('init', String(setup.initSeed));
  params.set('seed', String(setup.seed));
  params.set('batch', String(setup.batchSize));
  params.set('lr', String(setup.lr));
  params.set('sseed', String(extra.sampleSeed));
  params.set('steps', String(extra.steps));
  const url = `${window.location.pathname}?${params.toString()}${window.location.hash}`;
  if (url !== `${window.location.pathname}${window.location.search}${window.location.hash}`) window.history.replaceState(null, '', url);
}

export function sameSetup(a: Setup, b: Setup): boolean {
  if ((a.data ?? 'demo') !== (b.data ?? 'demo') && (a.family === 'hierarchical' || b.family === 'hierarchical')) return false;
  if (a.family !== b.family || a.preset !== b.preset || a.initSeed !== b.initSeed || a.seed !== b.seed || a.batchSize !== b.batchSize || a.lr !== b.lr) return false;
  const keys = new Set([...Object.keys(a.sizes), ...Object.keys(b.sizes)]);
  for (const k of keys) if (a.sizes[k] !== b.sizes[k]) return false;
  return true;
}
