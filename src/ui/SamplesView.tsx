// Samples at any point in training, with a seed; and the noise-level variation panel (Figure 6):
// each level's noise held or varied, with a reseed per level. For the colour model a held level is
// drawn once per grid row (each row a new draw, its cells vary the other levels), and one click varies
// only the top, middle or pixel level.
import { useEffect, useState } from 'react';
import { useLab } from '../state/lab';
import { callback, engine, type SampleResult } from '../worker/client';
import { CollapseHint } from './CollapseHint';
import { ImageGrid } from './ImageGrid';
import { useZooAction } from './Gallery';

const COUNTS = [16, 36, 64];
const ROWS = [1, 2, 3, 4];
const COLS = [4, 6, 8];
const LEVEL_WORDS: Record<string, string> = { top: 'top', middle: 'middle', pixel: 'pixels' };

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
  const [resultRows, setResultRows] = useState(1);
  const [busy, setBusy] = useState<string | null>(null);
  const [showProbs, setShowProbs] = useState(false);
  const [rows, setRows] = useState(2);
  const [cols, setCols] = useState(4);
  const levels = model?.noiseLevels ?? [];
  const colour = (model?.channels ?? 1) === 3;
  useEffect(() => {
    setHold({});
    setOffsets({});
    setResult(null);
  }, [model?.setup.preset, model?.setup.family]);
  const disabled = !model || phase === 'loading' || phase === 'faulted' || busy !== null;

  const draw = async (holdNow = hold): Promise<void> => {
    if (!model) return;
    setBusy(colour ? 'Re-estimating batch norm and sampling…' : 'Sampling…');
    try {
      const seeds = Object.fromEntries(levels.map((l) => [l.id, sampleSeed + (offsets[l.id] ?? 0)]));
      const request = colour ? { count: rows * cols, rows, seeds, hold: holdNow } : { count, seeds, hold: holdNow };
      const progress = colour
        ? (done: number, total: number) => setBusy(`Sampling: pass ${done} of ${total}…`)
        : (done: number, total: number) => setBusy(`Compiling sampling shaders ${done}/${total}…`);
      const r = await engine().sample(request, callback(progress));
      setResult(r);
      setResultRows(colour ? rows : 1);
    } catch (error) {
      reportError('Sampling failed', error);
    } finally {
      setBusy(null);
    }
  };

  // Opened from the model zoo: draw at once (its level grids: vary only the top level).
  useZooAction(['samples', 'levels'], !disabled, (view) => {
    if (view !== 'levels' || levels.length < 2) return void draw();
    const next = Object.fromEntries(levels.map((m, i) => [m.id, i !== 0]));
    setHold(next);
    void draw(next);
  });

  const autoregressive = model?.autoregressive ?? true;
  const resultCols = result && colour ? Math.max(1, Math.round(result.images.count / Math.max(1, resultRows))) : 0;
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
        {colour ? (
          <>
            <label className="field inline">
              <span>Rows</span>
              <select value={rows} onChange={(e) => setRows(Number(e.currentTarget.value))} data-testid="sample-rows">
                {ROWS.map((c) => (
                  <option key={c} value={c}>
                    {c}
                  </option>
                ))}
              </select>
            </label>
            <label className="field inline">
              <span>Columns</span>
              <select value={cols} onChange={(e) => setCols(Number(e.currentTarget.value))} data-testid="sample-cols">
                {COLS.map((c) => (
                  <option key={c} value={c}>
                    {c}
                  </option>
                ))}
              </select>
            </label>
          </>
        ) : (
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
        )}
        <button type="button" disabled={disabled} onClick={() => void draw()} data-testid="draw-samples">
          Draw samples
        </button>
        {busy && <span className="muted small" data-testid="sample-busy">{busy}</span>}
      </div>
      {levels.length > 1 && (
        <div className="levels" data-testid="noise-levels">
          <CollapseHint consequence={colour ? 'holding or reseeding the latent levels changes little: the variation comes from the pixel noise' : 'holding or reseeding z changes nothing: all the variation comes from the pixel noise'} />
          {colour ? (
            <p className="small">
              <strong>Noise-level variation</strong> (the paper&rsquo;s Figure 6): a held level is drawn once per row and shared by the
              row&rsquo;s images; a varied level is drawn for every image. Reseed draws new noise for one level only.
            </p>
          ) : (
            <p className="small">
              <strong>Noise-level variation</strong> (the paper&rsquo;s Figure 6): hold a level to share its noise across the whole grid and
              see what the other levels control. Reseed draws new noise for one level only.
            </p>
          )}
          {colour && (
            <div className="buttons vary-only">
              {levels.map((l) => (
                <button
                  key={l.id}
                  type="button"
                  className="chip"
                  disabled={disabled}
                  data-testid={`vary-only-${l.id}`}
                  title={`hold every level but ${l.label}, and draw`}
                  onClick={() => {
                    const next = Object.fromEntries(levels.map((m) => [m.id, m.id !== l.id]));
                    setHold(next);
                    void draw(next);
                  }}
                >
                  Vary only {LEVEL_WORDS[l.id] ?? l.label}
                </button>
              ))}
            </div>
          )}
          <table className="level-table">
            <tbody>
              {levels.map((l) => (
                <tr key={l.id}>
                  <th scope="row">{l.label}</th>
                  <td>
                    <label className="check">
                      <input type="checkbox" checked={!!hold[l.id]} onChange={(e) => setHold({ ...hold, [l.id]: e.currentTarget.checked })} data-testid={`hold-${l.id}`} />
                      {colour ? 'hold per row' : 'hold'}
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
            <ImageGrid
              batch={showProbs && result.probs ? result.probs : result.images}
              testId="sample-grid"
              label="sample grid"
              columns={colour ? resultCols : undefined}
              cell={colour ? Math.max(40, Math.min(80, 560 / Math.max(resultCols, 1))) : Math.max(36, Math.min(72, 420 / Math.sqrt(result.images.count)))}
              extra={Object.fromEntries(Object.entries(result.noiseHashes ?? {}).map(([k, v]) => [`data-noise-${k}`, v.join(',')]))}
            />
          </div>
          <div className="muted small" data-testid="sample-note">
            {result.images.count} samples in {(result.milliseconds / 1000).toFixed(1)} s
            {result.note ? ` (${result.note})` : autoregressive ? ` (${result.images.size * result.images.size} decoder passes, one per pixel, all on the GPU)` : ''}.{' '}
            {result.probs && (
              <label className="check">
                <input type="checkbox" checked={showProbs} onChange={(e) => setShowProbs(e.currentTarget.checked)} /> show {autoregressive ? 'last-pass probabilities' : 'mean image p(x|z)'}
              </label>
            )}
          </div>
        </div>
      )}
      {!result && <p className="muted">Samples can be drawn at any time, even during training (they run between two steps).</p>}
    </div>
  );
}
