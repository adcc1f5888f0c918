// Importance-sampled NLL with a chosen k (MNIST), or the colour model's bits/dim bound with its
// per-level KL split; with progress.
import { useEffect, useState } from 'react';
import { useLab } from '../state/lab';
import { callback, engine, type EvalResult } from '../worker/client';
import { nats, seconds } from './format';

export function EvalView() {
  const model = useLab((s) => s.model);
  const phase = useLab((s) => s.phase);
  const version = useLab((s) => s.modelVersion);
  const reportError = useLab((s) => s.reportError);
  const [k, setK] = useState(10);
  const [limit, setLimit] = useState(1000);
  const [split, setSplit] = useState<'test' | 'valid'>('test');
  const [progress, setProgress] = useState<{ done: number; total: number } | null>(null);
  const [result, setResult] = useState<EvalResult | null>(null);
  useEffect(() => setResult(null), [version]);
  const disabled = !model || phase === 'loading' || phase === 'faulted' || progress !== null;
  const colour = model?.unit === 'bits/dim';

  const run = async (): Promise<void> => {
    setProgress({ done: 0, total: limit });
    try {
      setResult(await engine().evaluate({ k, limit, split }, callback((done: number, total: number) => setProgress({ done, total }))));
    } catch (error) {
      reportError('Evaluation failed', error);
    } finally {
      setProgress(null);
    }
  };

  return (
    <div className="view" data-testid="eval-view">
      <div className="toolbar">
        {!colour && <label className="field inline">
          <span>k (importance samples)</span>
          <input type="number" min={1} max={1000} value={k} onChange={(e) => Number.isFinite(e.currentTarget.valueAsNumber) && setK(Math.max(1, Math.round(e.currentTarget.valueAsNumber)))} data-testid="eval-k" />
        </label>}
        <label className="field inline">
          <span>Images</span>
          <input type="number" min={1} max={10000} value={limit} onChange={(e) => Number.isFinite(e.currentTarget.valueAsNumber) && setLimit(Math.max(1, Math.round(e.currentTarget.valueAsNumber)))} data-testid="eval-limit" />
        </label>
        {!colour && <label className="field inline">
          <span>Split</span>
          <select value={split} onChange={(e) => setSplit(e.currentTarget.value as 'test' | 'valid')}>
            <option value="test">test</option>
            <option value="valid">validation</option>
          </select>
        </label>}
        {colour && <span className="muted small">held-out images; the ELBO bound (one z per image) in bits per dimension</span>}
        <button type="button" disabled={disabled} onClick={() => void run()} data-testid="evaluate">
          Evaluate
        </button>
      </div>
      {progress && (
        <div className="progress" role="progressbar" aria-valuenow={progress.done} aria-valuemax={progress.total} data-testid="eval-progress">
          <div className="progress-fill" style={{ width: `${((progress.done / Math.max(1, progress.total)) * 100).toFixed(0)}%` }} />
        </div>
      )}
      {result?.bits && (
        <table className="values eval-table" data-testid="eval-result">
          <tbody>
            <tr>
              <th scope="row">Negative ELBO (upper bound on the NLL)</th>
              <td data-testid="eval-bits">{result.bits.bitsPerDim.toFixed(3)} bits/dim</td>
            </tr>
            <tr>
              <th scope="row">… in nats per dimension</th>
              <td>{result.bits.natsPerDim.toFixed(3)} nats/dim</td>
            </tr>
            <tr>
              <th scope="row">Reconstruction −log p(x|z1)</th>
              <td>{result.bits.reconstruction.toFixed(3)} nats/dim</td>
            </tr>
            <tr>
              <th scope="row">KL1: q(z1|x) ‖ p(z1|z2)</th>
              <td data-testid="eval-kl1">{result.bits.kl1.toFixed(4)} nats/dim</td>
            </tr>
            <tr>
              <th scope="row">KL2: q(z2|x) ‖ N(0, I)</th>
              <td data-testid="eval-kl2">{result.bits.kl2.toFixed(4)} nats/dim</td>
            </tr>
          </tbody>
        </table>
      )}
      {result?.bits && (
        <p className="muted small">
          {result.images.toLocaleString('en-US')} held-out images at step {result.step}, {seconds(result.seconds)}; {result.bits.batchNorm}. {result.data}.
        </p>
      )}
      {result && !result.bits && (
        <table className="values eval-table" data-testid="eval-result">
          <tbody>
            <tr>
              <th scope="row">Importance-sampled NLL (k = {result.k})</th>
              <td data-testid="eval-nll">{nats(result.nll)} nats</td>
            </tr>
            <tr>
              <th scope="row">Negative ELBO (upper bound)</th>
              <td>{nats(result.negElbo)} nats</td>
            </tr>
            <tr>
              <th scope="row">Reconstruction term</th>
              <td>{nats(result.reconstruction)} nats</td>
            </tr>
            <tr>
              <th scope="row">KL term</th>
              <td>{nats(result.kl)} nats</td>
            </tr>
          </tbody>
        </table>
      )}
      {result && !result.bits && (
        <p className="muted small">
          {result.images.toLocaleString('en-US')} {result.split} images at step {result.step}, {seconds(result.seconds)}. {result.data}. Not comparable with the paper&rsquo;s Table 1, which used the fixed Larochelle binarization{model && model.imageSize !== 28 ? ' and 28x28 images' : ''}.
        </p>
      )}
    </div>
  );
}
