// Training-time estimates before a build: the adapter's measured speed (a calibration the worker runs
// once per adapter; remembered in localStorage) applied to a setup's FLOPs and dispatch count.
import type { AdapterInfo, Calibration, ModelSummary } from '../worker/client';

const STORAGE_KEY = 'pixelvae-lab:calibration';
/** Calibrations older than this are measured again (drivers and browsers change). */
const MAX_AGE_MS = 30 * 24 * 3600 * 1000;

function adapterKey(a: AdapterInfo): string {
  return [a.vendor, a.architecture, a.device, a.description, a.isFallbackAdapter ? 'fallback' : 'gpu'].join('|');
}

export function loadCalibration(adapter: AdapterInfo): Calibration | null {
  try {
    const raw = localStorage.getItem(STORAGE_KEY);
    if (!raw) return null;
    const stored = JSON.parse(raw) as { key?: string; calibration?: Calibration };
    const c = stored.calibration;
    if (stored.key !== adapterKey(adapter) || !c) return null;
    if (!(c.gflops > 0) || !(c.dispatchMs > 0) || !(Date.now() - c.measuredAt < MAX_AGE_MS)) return null;
    // Calibrations from before the conv kernel choice existed are measured again.
    const ok = (v: unknown): boolean => v === 'cpu' || v === 'tiled';
    if (!c.convVariants || typeof c.convVariants.timed !== 'boolean' || !ok(c.convVariants.choice?.forward) || !ok(c.convVariants.choice?.backwardInput) || !ok(c.convVariants.choice?.backwardWeight)) return null;
    return c;
  } catch {
    return null;
  }
}

export function saveCalibration(adapter: AdapterInfo, calibration: Calibration): void {
  try {
    localStorage.setItem(STORAGE_KEY, JSON.stringify({ key: adapterKey(adapter), calibration }));
  } catch {
    // Storage full or disabled: the calibration is measured again next time.
  }
}

/**
 * Seconds per training step of a model on the calibrated adapter: the step's dispatches at the
 * measured per-dispatch cost plus its FLOPs (forward and backward, about 3x the forward) at the
 * measured throughput. Null when the model gives no dispatch count or nothing is calibrated.
 */
export function stepSecondsOf(summary: Pick<ModelSummary, 'flopsPerImage' | 'dispatchesPerStep'>, batch: number, c: Calibration | null): number | null {
  if (!c || !summary.dispatchesPerStep) return null;
  return (summary.dispatchesPerStep * c.dispatchMs) / 1000 + (3 * summary.flopsPerImage * batch) / (c.gflops * 1e9);
}

/** Above this many seconds per 1000 steps the setup panel warns before the build. */
export const SLOW_PER_THOUSAND_S = 3600;
