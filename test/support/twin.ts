// Node helpers for tests of the PyTorch twin (python/pixelvae_torch): run `python -m pixelvae_torch ...`
// or a module/script with PYTHONPATH=python, exchange tensors as safetensors files in a temp dir, and
// compare arrays with a relative error that does not blow up near zero.
//
// The interpreter is $PIXELVAE_PYTHON, else /usr/bin/python3 (Debian's python3-torch lives there; a
// `python3` earlier on PATH may lack torch). Shared by the twin's test files: keep the API stable.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeSafetensors, encodeSafetensors, type SafeTensor } from '../../src/io/safetensors';

/** The repository root (this file is test/support/twin.ts). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The folder that holds the `pixelvae_torch` package. */
export const PYTHON_DIR = join(REPO_ROOT, 'python');

/** The Python interpreter the twin runs under. */
export function pythonExecutable(): string {
  return process.env.PIXELVAE_PYTHON || '/usr/bin/python3';
}

export interface PythonResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface PythonOptions {
  cwd?: string;
  /** Extra environment variables (PYTHONPATH gets python/ prepended either way). */
  env?: Record<string, string>;
  /** Kill the process after this long (default 10 minutes). */
  timeoutMs?: number;
  /** Resolve with a non-zero exit code instead of rejecting. */
  allowFailure?: boolean;
}

/** Runs the interpreter with `args`; rejects with its stderr on a non-zero exit unless allowFailure. */
export function runPython(args: readonly string[], opts: PythonOptions = {}): Promise<PythonResult> {
  const python = pythonExecutable();
  const inherited = process.env.PYTHONPATH;
  const env = {
    ...process.env,
    // One thread per process: vitest runs two files at once on two shared cores.
    OMP_NUM_THREADS: process.env.OMP_NUM_THREADS ?? '1',
    ...opts.env,
    PYTHONPATH: inherited ? `${PYTHON_DIR}${delimiter}${inherited}` : PYTHON_DIR,
    PYTHONDONTWRITEBYTECODE: '1',
  };
  return new Promise((resolvePromise, reject) => {
    execFile(python, [...args], { cwd: opts.cwd ?? REPO_ROOT, env, timeout: opts.timeoutMs ?? 600_000, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      if (error && (error as NodeJS.ErrnoException).code === 'ENOENT') {
        reject(new Error(`cannot run ${python}: not found (set PIXELVAE_PYTHON to an interpreter with torch; scripts/ensure-system-deps.sh installs python3-torch)`));
        return;
      }
      if (code !== 0 && !opts.allowFailure) {
        const killed = error && error.killed ? ` (killed after ${opts.timeoutMs ?? 600_000} ms)` : '';
        reject(new Error(`${python} ${args.join(' ')} exited with ${code}${killed}\n--- stderr ---\n${stderr}\n--- stdout ---\n${stdout}`));
        return;
      }
      resolvePromise({ code, stdout, stderr });
    });
  });
}

/** `python -m pixelvae_torch <args>` (the twin's command line). */
export function runTwinCli(args: readonly string[], opts: PythonOptions = {}): Promise<PythonResult> {
  return runPython(['-m', 'pixelvae_torch', ...args], opts);
}

/** `python -m <module> <args>` (e.g. 'pixelvae_torch.testing'). */
export function runPythonModule(module: string, args: readonly string[], opts: PythonOptions = {}): Promise<PythonResult> {
  return runPython(['-m', module, ...args], opts);
}

/** Runs Python source text (`python -c`), e.g. a few lines importing pixelvae_torch. */
export function runPythonCode(code: string, args: readonly string[] = [], opts: PythonOptions = {}): Promise<PythonResult> {
  return runPython(['-c', code, ...args], opts);
}

/** The last non-empty stdout line parsed as JSON (the twin's commands print one JSON record). */
export function lastJsonLine<T = unknown>(stdout: string): T {
  const lines = stdout.split('\n').filter((l) => l.trim() !== '');
  if (lines.length === 0) throw new Error('no output to parse as JSON');
  return JSON.parse(lines[lines.length - 1]) as T;
}

/** A fresh temp dir with a remover; call remove() in afterAll. */
export function tempDir(prefix = 'pixelvae-twin-'): { path: string; file: (name: string) => string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, file: (name) => join(path, name), remove: () => rmSync(path, { recursive: true, force: true }) };
}

// ---- tensors through safetensors files ------------------------------------------------------------

export type TensorInput = SafeTensor | { shape: number[]; data: Float32Array };

/** Writes named F32 (or typed) tensors and string metadata as a safetensors file. */
export function writeTensors(path: string, tensors: Record<string, TensorInput> | Map<string, TensorInput>, metadata: Record<string, string> = {}): void {
  const out = new Map<string, SafeTensor>();
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  for (const [name, t] of entries) {
    const expected = t.shape.reduce((a, b) => a * b, 1);
    if (t.data.length !== expected) throw new Error(`writeTensors: ${name} has ${t.data.length} values for shape [${t.shape.join(',')}]`);
    out.set(name, 'dtype' in t ? t : { dtype: 'F32', shape: t.shape, data: t.data });
  }
  writeFileSync(path, encodeSafetensors(out, metadata));
}

/** Reads a safetensors file: tensors by name and the metadata. */
export function readTensors(path: string): { tensors: Map<string, SafeTensor>; metadata: Record<string, string> } {
  const file = decodeSafetensors(new Uint8Array(readFileSync(path)), path);
  return { tensors: file.tensors, metadata: file.metadata };
}

/** A tensor's F32 data from a map, with a clear error when it is missing. */
export function f32(tensors: Map<string, SafeTensor>, name: string): Float32Array {
  const t = tensors.get(name);
  if (!t) throw new Error(`no tensor '${name}' (have: ${[...tensors.keys()].join(', ')})`);
  if (t.dtype !== 'F32') throw new Error(`tensor '${name}' is ${t.dtype}, expected F32`);
  return t.data as Float32Array;
}

// ---- comparisons ------------------------------------------------------------------------------------

export interface Difference {
  /** max_i |a_i - b_i| / max(|b_i|, scale). */
  relative: number;
  /** max_i |a_i - b_i|. */
  absolute: number;
  /** Index of the worst relative difference. */
  at: number;
  /** The floor used for the denominator. */
  scale: number;
}

/**
 * Compares `actual` against `reference` element-wise: the relative error is |a - b| / max(|b|, scale),
 * so entries near zero (where float32 rounding of a sum of larger terms is all there is) are judged
 * against `scale` rather than their own tiny size. Default scale: `floor` (1e-2) times the largest |b|
 * of the array, and at least `minScale` (1e-6). NaN or a length mismatch gives Infinity.
 */
export function compareArrays(actual: ArrayLike<number>, reference: ArrayLike<number>, opts: { scale?: number; floor?: number; minScale?: number } = {}): Difference {
  if (actual.length !== reference.length) return { relative: Infinity, absolute: Infinity, at: -1, scale: NaN };
  let maxRef = 0;
  for (let i = 0; i < reference.length; i++) maxRef = Math.max(maxRef, Math.abs(reference[i]));
  const scale = opts.scale ?? Math.max((opts.floor ?? 1e-2) * maxRef, opts.minScale ?? 1e-6);
  let relative = 0;
  let absolute = 0;
  let at = 0;
  for (let i = 0; i < reference.length; i++) {
    const d = Math.abs(actual[i] - reference[i]);
    if (!Number.isFinite(d)) return { relative: Infinity, absolute: Infinity, at: i, scale };
    const r = d / Math.max(Math.abs(reference[i]), scale);
    absolute = Math.max(absolute, d);
    if (r > relative) {
      relative = r;
      at = i;
    }
  }
  return { relative, absolute, at, scale };
}

/** Largest absolute difference (Infinity for NaN or a length mismatch). */
export function maxAbsDiff(actual: ArrayLike<number>, reference: ArrayLike<number>): number {
  if (actual.length !== reference.length) return Infinity;
  let m = 0;
  for (let i = 0; i < reference.length; i++) {
    const d = Math.abs(actual[i] - reference[i]);
    if (!Number.isFinite(d)) return Infinity;
    m = Math.max(m, d);
  }
  return m;
}
