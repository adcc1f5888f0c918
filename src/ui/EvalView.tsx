// Importance-sampled NLL with a chosen k, with progress.
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
        <label className="field inline">
          <span>k (importance samples)</span>
          <input type="number" min={1} max={1000} value={k} onChange={(e) => Number.isFinite(e.currentTarget.valueAsNumber) && setK(Math.max(1, Math.round(e.currentTarget.valueAsNumber)))} data-testid="eval-k" />
        </label>
        <label className="field inline">
          <span>Images</span>
          <input type="number" min={1} max={10000} value={limit} onChange={(e) => Number.isFinite(e.currentTarget.valueAsNumber) && setLimit(Math.max(1, Math.round(e.currentTarget.valueAsNumber)))} data-testid="eval-limit" />
        </label>
        <label className="field inline">
          <span>Split</span>
          <select value={split} onChange={(e) => setSplit(e.currentTarget.value as 'test' | 'valid')}>
            <option value="test">test</option>
            <option value="valid">validation</option>
          </select>
        </label>
        <button type="button" disabled={disabled} onClick={() => void run()} data-testid="evaluate">
          Evaluate
        </button>
      </div>
      {progress && (
        <div className="progress" role="progressbar" aria-valuenow={progress.done} aria-valuemax={progress.total} data-testid="eval-progress">
          <div className="progress-fill" style={{ width: `${((progress.done / Math.max(1, progress.total)) * 100).toFixed(0)}%` }} />
        </div>
      )}
      {result && (
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
      {result && (
        <p className="muted small">
          {result.images.toLocaleString('en-US')} {result.split} images at step {result.step}, {seconds(result.seconds)}. {result.data}. Not comparable with the paper&rsquo;s Table 1, which used the fixed Larochelle binarization{model && model.imageSize !== 28 ? ' and 28x28 images' : ''}.
        </p>
      )}
    </div>
  );
}
