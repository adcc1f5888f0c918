// Whether a model's latent has collapsed (the KL term near zero): then z carries almost nothing about
// the image, and the views built on it (latent map, reconstructions, holding z) show nothing, which
// the page must say rather than leave the user to guess.
import type { History, ModelSummary } from '../worker/client';

/** Below this many nats per image the latent is called unused (a 2-D latent that separates digits carries several). */
export const COLLAPSED_KL_NATS = 0.1;

export interface Collapse {
  /** KL per image, nats. */
  kl: number;
  step: number;
  /** Where the number comes from, in words. */
  source: string;
}

/** The latest KL of a model per image in nats, or null when there is none yet (untrained, or no latent). */
export function latestKl(model: ModelSummary, history: History): Collapse | null {
  if (!model.hasLatent) return null;
  const perImage = (kl: number): number => (model.unit === 'bits/dim' ? kl * Math.LN2 * model.channels * model.imageSize * model.imageSize : kl);
  const train = history.train;
  const valid = history.valid;
  const lastTrain = train.length > 0 ? train[train.length - 1] : null;
  const lastValid = valid.length > 0 ? valid[valid.length - 1] : null;
  if (lastValid && (!lastTrain || lastValid.step >= lastTrain.step)) return { kl: perImage(lastValid.kl), step: lastValid.step, source: 'validation bound' };
  if (!lastTrain) return null;
  // The mean over the last few readbacks (each already a mean over its steps): one batch's KL is noisy.
  const recent = train.slice(-5);
  return { kl: perImage(recent.reduce((s, p) => s + p.kl, 0) / recent.length), step: lastTrain.step, source: 'training batches' };
}

/** The collapse, when the latent is unused after some training; null otherwise. */
export function latentCollapse(model: ModelSummary | null, history: History, step: number): Collapse | null {
  if (!model || step < 10) return null;
  const k = latestKl(model, history);
  return k && k.kl < COLLAPSED_KL_NATS ? k : null;
}
