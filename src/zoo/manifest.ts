// The model zoo's manifest (public/models/manifest.json, written by scripts/zoo.mjs): what each
// shipped model is, how it was trained (images seen, wall time, hardware, the exact command), its
// measured figures with their standard errors, and its file (float16 safetensors, no optimizer state).
// Platform-free; validateManifest names every problem at once, by path, so a hand-edited or truncated
// manifest is refused with something a person can fix.

export const ZOO_FORMAT = 'pixelvae-lab-zoo';
export const ZOO_VERSION = 1;

export type ZooFamily = 'mnist' | 'hierarchical';
/** The app views that show what a model is for. */
export const ZOO_VIEWS = ['samples', 'levels', 'latent', 'reconstruct'] as const;
export type ZooView = (typeof ZOO_VIEWS)[number];
/** Data sets the zoo trains on (the names the app and the CLIs use). */
export const ZOO_DATA = ['mnist', 'demo', 'colour-mnist'] as const;
export type ZooData = (typeof ZOO_DATA)[number];

export interface ZooFigure {
  /** e.g. "IS-NLL", "-ELBO", "KL", "bits/dim", "k-NN error". */
  name: string;
  value: number;
  /** "nats", "bits/dim" or "fraction". */
  unit: string;
  /** Standard error of `value` (spread over the n images / sqrt(n)). */
  stderr: number;
  /** Images evaluated. */
  n: number;
  /** Importance samples per image (IS-NLL). */
  k?: number;
  /** "test", "held-out", ... */
  split: string;
  /** What computed it (e.g. "PyTorch twin 1.13 on float16 weights"). */
  engine: string;
}

export interface ZooCrossCheck {
  /** e.g. "Node CLI (WebGPU, lavapipe)". */
  engine: string;
  figure: string;
  n: number;
  k?: number;
  /** The second engine's value on the same images and draws. */
  value: number;
  /** The twin's value on the same images and draws. */
  twin: number;
  /** |value - twin|, and whether it is within the figure's standard error. */
  difference: number;
  agrees: boolean;
}

export interface ZooTraining {
  imagesSeen: number;
  steps: number;
  batchSize: number;
  wallSeconds: number;
  hardware: string;
  /** The exact command that reproduces the model (from a fresh clone, after npm install). */
  command: string;
  /** Training commands run (a resumed training has several). */
  runs: number;
}

export interface ZooEntry {
  id: string;
  title: string;
  /** What the model is (architecture, in a sentence). */
  what: string;
  /** What it shows (the paper's point it illustrates). */
  shows: string;
  family: ZooFamily;
  /** The checkpoint's preset, prefixed as in checkpoints ("mnist-gated-pixelvae-cond", "hier-small"). */
  preset: string;
  sizes: Record<string, unknown>;
  params: number;
  /** File name, relative to the manifest. */
  file: string;
  bytes: number;
  sha256: string;
  storage: 'F16';
  data: { name: ZooData; description: string };
  training: ZooTraining;
  figures: ZooFigure[];
  crossCheck?: ZooCrossCheck;
  views: ZooView[];
}

export interface ZooManifest {
  format: typeof ZOO_FORMAT;
  version: number;
  /** ISO time the manifest was written. */
  generated: string;
  /** The zoo command (budget flags included). */
  command: string;
  models: ZooEntry[];
}

export class ZooError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ZooError';
  }
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);
const ID = /^[a-z0-9][a-z0-9-]*$/;
/** A plain file name next to the manifest: no folders, no scheme, nothing hidden. */
const FILE = /^[A-Za-z0-9][A-Za-z0-9._-]*\.safetensors$/;

/** Checks a parsed manifest; throws one ZooError listing every problem (by JSON path). */
export function validateManifest(value: unknown, where = 'models/manifest.json'): ZooManifest {
  const problems: string[] = [];
  const need = (ok: boolean, path: string, what: string): boolean => {
    if (!ok) problems.push(`${path}: ${what}`);
    return ok;
  };
  const str = (o: Obj, key: string, path: string): void => void need(typeof o[key] === 'string' && (o[key] as string).length > 0, `${path}.${key}`, 'must be a non-empty string');
  const num = (o: Obj, key: string, path: string, min = 0): void =>
    void need(typeof o[key] === 'number' && Number.isFinite(o[key]) && (o[key] as number) >= min, `${path}.${key}`, `must be a finite number >= ${min}`);
  const int = (o: Obj, key: string, path: string, min = 0): void =>
    void need(Number.isInteger(o[key]) && (o[key] as number) >= min, `${path}.${key}`, `must be an integer >= ${min}`);

  if (!isObj(value)) throw new ZooError(`${where}: not a JSON object`);
  const m = value;
  if (m.format !== ZOO_FORMAT) throw new ZooError(`${where}: format is ${JSON.stringify(m.format)}, expected "${ZOO_FORMAT}" (not a model zoo manifest)`);
  if (!Number.isInteger(m.version) || (m.version as number) < 1) problems.push('version: must be a positive integer');
  else if ((m.version as number) > ZOO_VERSION) problems.push(`version: ${m.version as number} was written by a newer PixelVAE Lab (this one reads up to ${ZOO_VERSION})`);
  str(m, 'generated', '$');
  str(m, 'command', '$');
  if (need(Array.isArray(m.models), '$.models', 'must be a list')) {
    const ids = new Set<string>();
    const files = new Set<string>();
    (m.models as unknown[]).forEach((e, i) => {
      const p = `models[${i}]`;
      if (!need(isObj(e), p, 'must be an object')) return;
      const entry = e as Obj;
      if (need(typeof entry.id === 'string' && ID.test(entry.id), `${p}.id`, 'must be lower-case letters, digits and dashes')) {
        need(!ids.has(entry.id as string), `${p}.id`, `'${entry.id as string}' appears twice`);
        ids.add(entry.id as string);
      }
      for (const key of ['title', 'what', 'shows', 'preset', 'sha256']) str(entry, key, p);
      need(entry.family === 'mnist' || entry.family === 'hierarchical', `${p}.family`, 'must be "mnist" or "hierarchical"');
      if (typeof entry.preset === 'string' && (entry.family === 'mnist' || entry.family === 'hierarchical')) {
        need(entry.preset.startsWith(entry.family === 'mnist' ? 'mnist-' : 'hier-'), `${p}.preset`, `'${entry.preset}' is not a ${entry.family} preset`);
      }
      need(isObj(entry.sizes), `${p}.sizes`, 'must be an object');
      int(entry, 'params', p, 1);
      int(entry, 'bytes', p, 9);
      if (need(typeof entry.file === 'string' && FILE.test(entry.file), `${p}.file`, 'must be a .safetensors file name next to the manifest (no folders)')) {
        need(!files.has(entry.file as string), `${p}.file`, `'${entry.file as string}' is used twice`);
        files.add(entry.file as string);
      }
      if (typeof entry.sha256 === 'string') need(/^[0-9a-f]{64}$/.test(entry.sha256), `${p}.sha256`, 'must be 64 lower-case hex digits');
      need(entry.storage === 'F16', `${p}.storage`, 'must be "F16"');
      if (need(isObj(entry.data), `${p}.data`, 'must be an object')) {
        const d = entry.data as Obj;
        need((ZOO_DATA as readonly unknown[]).includes(d.name), `${p}.data.name`, `must be one of ${ZOO_DATA.join(', ')}`);
        str(d, 'description', `${p}.data`);
        need((d.name === 'mnist') === (entry.family === 'mnist'), `${p}.data.name`, `'${String(d.name)}' is not data for a ${String(entry.family)} model`);
      }
      if (need(isObj(entry.training), `${p}.training`, 'must be an object')) {
        const t = entry.training as Obj;
        const tp = `${p}.training`;
        int(t, 'imagesSeen', tp, 1);
        int(t, 'steps', tp, 1);
        int(t, 'batchSize', tp, 1);
        int(t, 'runs', tp, 1);
        num(t, 'wallSeconds', tp);
        str(t, 'hardware', tp);
        str(t, 'command', tp);
      }
      if (need(Array.isArray(entry.figures) && entry.figures.length > 0, `${p}.figures`, 'must be a non-empty list')) {
        (entry.figures as unknown[]).forEach((f, j) => {
          const fp = `${p}.figures[${j}]`;
          if (!need(isObj(f), fp, 'must be an object')) return;
          const fo = f as Obj;
          for (const key of ['name', 'unit', 'split', 'engine']) str(fo, key, fp);
          num(fo, 'value', fp, -Infinity);
          num(fo, 'stderr', fp);
          int(fo, 'n', fp, 1);
          if (fo.k !== undefined) int(fo, 'k', fp, 1);
        });
      }
      if (entry.crossCheck !== undefined && need(isObj(entry.crossCheck), `${p}.crossCheck`, 'must be an object')) {
        const c = entry.crossCheck as Obj;
        const cp = `${p}.crossCheck`;
        str(c, 'engine', cp);
        str(c, 'figure', cp);
        int(c, 'n', cp, 1);
        num(c, 'value', cp, -Infinity);
        num(c, 'twin', cp, -Infinity);
        num(c, 'difference', cp);
        need(typeof c.agrees === 'boolean', `${cp}.agrees`, 'must be true or false');
      }
      if (need(Array.isArray(entry.views) && entry.views.length > 0, `${p}.views`, 'must be a non-empty list')) {
        for (const v of entry.views as unknown[]) {
          need((ZOO_VIEWS as readonly unknown[]).includes(v), `${p}.views`, `unknown view ${JSON.stringify(v)} (one of ${ZOO_VIEWS.join(', ')})`);
          if (v === 'levels') need(entry.family === 'hierarchical', `${p}.views`, "'levels' needs a hierarchical model");
          if (v === 'latent') need(entry.family === 'mnist' && isObj(entry.sizes) && entry.sizes.latentDim === 2, `${p}.views`, "'latent' needs an MNIST model with a 2-D latent");
        }
      }
    });
  }
  if (problems.length > 0) throw new ZooError(`${where} is not a valid model zoo manifest:\n${problems.map((x) => `  - ${x}`).join('\n')}`);
  return m as unknown as ZooManifest;
}

/** Parses and validates manifest text. */
export function parseManifest(text: string, where = 'models/manifest.json'): ZooManifest {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ZooError(`${where}: not valid JSON (${(error as Error).message})`);
  }
  return validateManifest(value, where);
}

/** A figure by name, or undefined. */
export function figure(entry: ZooEntry, name: string): ZooFigure | undefined {
  return entry.figures.find((f) => f.name === name);
}

/** "84.31 ± 0.27 nats" (two decimals; three for bits/dim and fractions). */
export function formatFigure(f: ZooFigure): string {
  const digits = f.unit === 'nats' ? 2 : 3;
  const value = f.unit === 'fraction' ? `${(100 * f.value).toFixed(1)}%` : f.value.toFixed(digits);
  const se = f.unit === 'fraction' ? `${(100 * f.stderr).toFixed(1)}%` : f.stderr.toFixed(digits);
  return `${value} ± ${se}${f.unit === 'fraction' ? '' : ` ${f.unit}`}`;
}
