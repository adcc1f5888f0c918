// Live charts: the minimised loss with the validation bound, the reconstruction and KL terms
// (the paper's Figure 4b, live), and throughput.
import { latestKl } from '../state/collapse';
import { useLab } from '../state/lab';
import { CollapseHint } from './CollapseHint';
import { LineChart } from './LineChart';

export function TrainingView() {
  const history = useLab((s) => s.history);
  const model = useLab((s) => s.model);
  const data = useLab((s) => s.data);
  const train = history.train;
  const hasLatent = model?.hasLatent ?? true;
  const bits = model?.unit === 'bits/dim';
  const unit = bits ? 'bits/dim' : 'nats';
  const split = bits && train.some((p) => p.kl1 !== undefined);
  const kl = model ? latestKl(model, history) : null;
  return (
    <div className="view" data-testid="training-view">
      <CollapseHint consequence="the latent map, reconstructions and holding z will show nothing" />
      <div className="charts">
        <LineChart
          title={bits ? 'Loss (bits per dimension)' : 'Loss (nats per image)'}
          yLabel={unit}
          testId="chart-loss"
          series={[
            { name: 'train loss', colour: '#4f46e5', points: train.map((p) => ({ x: p.step, y: p.loss })) },
            { name: bits ? 'held-out −ELBO' : 'validation −ELBO', colour: '#dc2626', dots: true, points: history.valid.map((p) => ({ x: p.step, y: p.negElbo })) },
          ]}
        />
        <LineChart
          title={split ? 'Reconstruction and KL of each level' : hasLatent ? 'Reconstruction and KL terms (Figure 4b)' : 'Reconstruction term'}
          yLabel={unit}
          testId="chart-terms"
          series={[
            { name: split ? 'reconstruction −log p(x|z1)' : 'reconstruction −log p(x|z)', colour: '#0891b2', points: train.map((p) => ({ x: p.step, y: p.reconstruction })) },
            ...(split
              ? [
                  { name: 'KL1(q(z1|x) ‖ p(z1|z2))', colour: '#d97706', points: train.map((p) => ({ x: p.step, y: p.kl1 ?? 0 })) },
                  { name: 'KL2(q(z2|x) ‖ N(0, I))', colour: '#7c3aed', points: train.map((p) => ({ x: p.step, y: p.kl2 ?? 0 })) },
                ]
              : hasLatent
                ? [{ name: 'KL(q(z|x) ‖ p(z))', colour: '#d97706', points: train.map((p) => ({ x: p.step, y: p.kl })) }]
                : []),
          ]}
        />
        <LineChart title="Throughput" yLabel="images/s" testId="chart-speed" series={[{ name: 'images per second', colour: '#059669', points: train.map((p) => ({ x: p.step, y: p.imagesPerSecond })) }]} />
      </div>
      <p className="muted small">
        {bits
          ? 'Train loss is reconstruction + α1·KL1 + α2·KL2 in bits per dimension (sub-pixel), with the KL warm-up weights; the held-out bound uses α = 1 and re-estimated batch-norm statistics. '
          : 'Train loss is reconstruction + α·KL with the KL warm-up weight α; the validation bound uses α = 1. '}
        Data: {data?.description ?? 'loading…'}.
        {train.length > 0 && ` KL weight now ${train[train.length - 1].klWeight.toFixed(2)}.`}
        {kl && (
          <span data-testid="latest-kl" data-kl={kl.kl} data-step={kl.step}>
            {' '}
            The latent carries {kl.kl < 0.01 ? kl.kl.toExponential(1) : kl.kl.toFixed(2)} nats per image (KL at step {kl.step}, {kl.source}).
          </span>
        )}
      </p>
    </div>
  );
}
