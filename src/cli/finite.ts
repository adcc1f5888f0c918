// The command line's guards against non-finite numbers: a checkpoint holding NaN or Inf is never
// written under a name a later run resumes from, and an evaluation whose figures are not finite exits
// non-zero (the JSON line still shows them, as null) instead of passing for a result.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { checkpointNonFinite, decodeCheckpoint } from '../io/checkpoint';

/**
 * Writes checkpoint bytes to out/name when every value is finite; otherwise writes them to
 * out/diverged.safetensors (for inspection; no loader opens it) and throws, naming the tensors.
 */
export async function writeFiniteCheckpoint(out: string, name: string, bytes: Uint8Array, step: number): Promise<void> {
  const bad = name === 'diverged.safetensors' ? [] : checkpointNonFinite(decodeCheckpoint(bytes, name, { allowNonFinite: true }));
  if (bad.length === 0) {
    await writeFile(join(out, name), bytes);
    return;
  }
  await writeFile(join(out, 'diverged.safetensors'), bytes);
  const names = bad.map((b) => `'${b.key}'`).join(', ');
  throw new Error(
    `training diverged by step ${step}: ${names} hold NaN or Inf, so ${name} was not written (the state is in ${join(out, 'diverged.safetensors')}); try a lower --lr`,
  );
}

/** Throws when an evaluation's figures are not finite numbers (the model diverged or overflowed). */
export function refuseNonFinite(command: string, figures: Record<string, number>): void {
  const bad = Object.entries(figures).filter(([, v]) => !Number.isFinite(v));
  if (bad.length === 0) return;
  throw new Error(`${command}: ${bad.map(([k, v]) => `${k} is ${v}`).join(', ')}: the model's outputs are not finite numbers, so these are not results`);
}
