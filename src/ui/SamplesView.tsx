// Samples at any point in training, with a seed; and the noise-level variation panel (Figure 6):
// each level's noise held (shared by the whole grid) or varied, with a reseed per level.
import { useEffect, useState } from 'react';
import { useLab } from '../state/lab';
import { callback, engine, type SampleResult } from '../worker/client';
import { ImageGrid } from './ImageGrid';

const COUNTS = [16, 36, 64];

export function SamplesView() {
  const model = useLab((s) => s.model);
  const phase = useLab((s) => s.phase);
  const sampleSeed = useLab((s) => s.sampleSeed);
  const setSampleSeed = useLab((s) => s.setSampleSeed);
  const reportError = useLab((s) => s.reportError);
  const [count, setCount] = useState(16);
  const [hold, setHold] = useState<Record<string, boolean>>({});
  const [offsets, setOffsets] = useState<Record<string, number>>({});
  const [result, setResult] = useState<SampleResult | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const [showProbs, setShowProbs] = useState(false);
  const levels = model?.noiseLevels ?? [];
  useEffect(() => {
    setHold({});
    setOffsets({});
  }, [model?.setup.preset]);
  const disabled = !model || phase === 'loading' || phase === 'faulted' || busy !== null;

  const draw = async (): Promise<void> => {
    if (!model) return;
    setBusy('Sampling…');
    try {
      const seeds = Object.fromEntries(levels.map((l) => [l.id, sampleSeed + (offsets[l.id] ?? 0)]));
      const r = await engine().sample({ count, seeds, hold }, callback((done: number, total: number) => setBusy(`Compiling sampling shaders ${done}/${total}…`)));
      setResult(r);
    } catch (error) {
      reportError('Sampling failed', error);
    } finally {
      setBusy(null);
    }
  };

  const autoregressive = model?.autoregressive ?? true;
  return (
    <div className="view" data-testid="samples-view">
      <div className="toolbar">
        <label className="field inline">
          <span>Seed</span>
          <input type="number" value={sampleSeed} onChange={(e) => Number.isFinite(e.currentTarget.valueAsNumber) && setSampleSeed(e.currentTarget.valueAsNumber)} data-testid="sample-seed" />
        </label>
        <button type="button" className="secondary" onClick={() => setSampleSeed(Math.floor(Math.random() * 1e6))}>
          New seed
        </button>
        <label className="field inline">
          <span>Images</span>
          <select value={count} onChange={(e) => setCount(Number(e.currentTarget.value))} data-testid="sample-count">
            {COUNTS.map((c) => (
              <option key={c} value={c}>
                {c}
              </option>
            ))}
          </select>
        </label>
        <button type="button" disabled={disabled} onClick={() => void draw()} data-testid="draw-samples">
          Draw samples
        </button>
        {busy && <span className="muted small" data-testid="sample-busy">{busy}</span>}
      </div>
      {levels.length > 1 && (
        <div className="levels" data-testid="noise-levels">
          <p className="small">
            <strong>Noise-level variation</strong> (the paper&rsquo;s Figure 6): hold a level to share its noise across the whole grid and
            see what the other levels control. Reseed draws new noise for one level only.
          </p>
          <table className="level-table">
            <tbody>
              {levels.map((l) => (
                <tr key={l.id}>
                  <th scope="row">{l.label}</th>
                  <td>
                    <label className="check">
                      <input type="checkbox" checked={!!hold[l.id]} onChange={(e) => setHold({ ...hold, [l.id]: e.currentTarget.checked })} data-testid={`hold-${l.id}`} />
                      hold
                    </label>
                  </td>
                  <td className="muted small">{l.help}</td>
                  <td className="muted small">seed {sampleSeed + (offsets[l.id] ?? 0)}</td>
                  <td>
                    <button type="button" className="secondary small-button" onClick={() => setOffsets({ ...offsets, [l.id]: (offsets[l.id] ?? 0) + 1 })} data-testid={`reseed-${l.id}`}>
                      Reseed
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {result && model && (
        <div className="result">
          <div className="grid-wrap">
            <ImageGrid batch={showProbs ? result.probs : result.images} testId="sample-grid" label="sample grid" cell={Math.max(36, Math.min(72, 420 / Math.sqrt(result.images.count)))} />
          </div>
          <div className="muted small">
            {result.images.count} samples in {(result.milliseconds / 1000).toFixed(1)} s
            {autoregressive ? ` (${result.images.size * result.images.size} decoder passes, one per pixel, all on the GPU)` : ''}.{' '}
            <label className="check">
              <input type="checkbox" checked={showProbs} onChange={(e) => setShowProbs(e.currentTarget.checked)} /> show {autoregressive ? 'last-pass probabilities' : 'mean image p(x|z)'}
            </label>
          </div>
        </div>
      )}
      {!result && <p className="muted">Samples can be drawn at any time, even during training (they run between two steps).</p>}
    </div>
  );
}
