// Says, where a view is empty because the latent is unused (KL near zero), why and what to change.
import { latentCollapse } from '../state/collapse';
import { useLab } from '../state/lab';

function klText(kl: number): string {
  return kl === 0 ? '0' : kl < 0.001 ? kl.toExponential(1) : kl.toFixed(3);
}

/** `consequence`: what the collapse does to this view, in words. */
export function CollapseHint({ consequence }: { consequence: string }) {
  const model = useLab((s) => s.model);
  const history = useLab((s) => s.history);
  const step = useLab((s) => s.step);
  const collapse = latentCollapse(model, history, step);
  if (!collapse || !model) return null;
  const mnist = model.unit === 'nats';
  return (
    <div className="collapse-hint" role="note" data-testid="collapse-hint" data-kl={collapse.kl}>
      <strong>The latent is not used.</strong> KL(q(z|x) ‖ p(z)) is {klText(collapse.kl)} nats per image at step {collapse.step} ({collapse.source}): z carries
      almost nothing about the image, so {consequence}. The PixelCNN decoder models the images without it (the paper&rsquo;s Figure 4: the more PixelCNN
      layers and the wider their receptive field, the less the latent is used).{' '}
      {mnist
        ? 'To use it: build with fewer PixelCNN layers (0 or 1) and a small input filter (3), the “z in every gate” preset, an image size of 12 or more, or a KL warm-up; the CPU sizes do this.'
        : 'To use it: fewer pixel PixelCNN blocks, a narrower pixel PixelCNN, or longer KL warm-ups.'}
    </div>
  );
}
