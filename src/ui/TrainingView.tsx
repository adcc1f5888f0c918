// Live charts: the minimised loss with the validation bound, the reconstruction and KL terms
// (the paper's Figure 4b, live), and throughput.
import { useLab } from '../state/lab';
import { LineChart } from './LineChart';

export function TrainingView() {
  const history = useLab((s) => s.history);
  const model = useLab((s) => s.model);
  const data = useLab((s) => s.data);
  const train = history.train;
  const hasLatent = model?.hasLatent ?? true;
  return (
    <div className="view" data-testid="training-view">
      <div className="charts">
        <LineChart
          title="Loss (nats per image)"
          yLabel="nats"
          testId="chart-loss"
          series={[
            { name: 'train loss', colour: '#4f46e5', points: train.map((p) => ({ x: p.step, y: p.loss })) },
            { name: 'validation −ELBO', colour: '#dc2626', dots: true, points: history.valid.map((p) => ({ x: p.step, y: p.negElbo })) },
          ]}
        />
        <LineChart
          title={hasLatent ? 'Reconstruction and KL terms (Figure 4b)' : 'Reconstruction term'}
          yLabel="nats"
          testId="chart-terms"
          series={[
            { name: 'reconstruction −log p(x|z)', colour: '#0891b2', points: train.map((p) => ({ x: p.step, y: p.reconstruction })) },
            ...(hasLatent ? [{ name: 'KL(q(z|x) ‖ p(z))', colour: '#d97706', points: train.map((p) => ({ x: p.step, y: p.kl })) }] : []),
          ]}
        />
        <LineChart title="Throughput" yLabel="images/s" testId="chart-speed" series={[{ name: 'images per second', colour: '#059669', points: train.map((p) => ({ x: p.step, y: p.imagesPerSecond })) }]} />
      </div>
      <p className="muted small">
        Train loss is reconstruction + α·KL with the KL warm-up weight α; the validation bound uses α = 1. Data: {data?.description ?? 'loading…'}.
        {train.length > 0 && ` KL weight now ${train[train.length - 1].klWeight.toFixed(2)}.`}
      </p>
    </div>
  );
}
