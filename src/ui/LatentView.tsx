// The test set embedded by the encoder (means), coloured by digit: the latent itself for 2-D
// latents, its first two principal components otherwise; the k-NN error; click a point of a 2-D
// plane to decode it.
import { useEffect, useRef, useState } from 'react';
import { useLab } from '../state/lab';
import { callback, engine, type LatentResult, type SampleResult } from '../worker/client';
import { CollapseHint } from './CollapseHint';
import { ImageGrid } from './ImageGrid';
import { useZooAction } from './Gallery';

const COLOURS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
const SIZE = 420;
const PAD = 16;

export function LatentView() {
  const model = useLab((s) => s.model);
  const phase = useLab((s) => s.phase);
  const version = useLab((s) => s.modelVersion);
  const seed = useLab((s) => s.sampleSeed);
  const reportError = useLab((s) => s.reportError);
  const [result, setResult] = useState<LatentResult | null>(null);
  const [limit, setLimit] = useState(1000);
  const [busy, setBusy] = useState<string | null>(null);
  const [picked, setPicked] = useState<{ z: number[]; sample: SampleResult } | null>(null);
  const canvas = useRef<HTMLCanvasElement>(null);
  const disabled = !model || phase === 'loading' || phase === 'faulted' || busy !== null;

  useEffect(() => {
    setResult(null);
    setPicked(null);
  }, [version]);
  // Opened from the model zoo: embed the test set at once (run is defined below, for latent models).
  useZooAction(['latent'], !disabled && !!model?.hasLatent, () => void run());

  const b = result?.bounds;
  const toPx = (x: number, y: number): [number, number] => {
    if (!b) return [0, 0];
    return [PAD + ((x - b.minX) / (b.maxX - b.minX)) * (SIZE - 2 * PAD), SIZE - PAD - ((y - b.minY) / (b.maxY - b.minY)) * (SIZE - 2 * PAD)];
  };

  useEffect(() => {
    const c = canvas.current;
    if (!c || !result) return;
    const g = c.getContext('2d')!;
    g.fillStyle = '#ffffff';
    g.fillRect(0, 0, SIZE, SIZE);
    g.strokeStyle = '#e5e7eb';
    g.strokeRect(0.5, 0.5, SIZE - 1, SIZE - 1);
    for (let i = 0; i < result.count; i++) {
      const [px, py] = toPx(result.points[2 * i], result.points[2 * i + 1]);
      g.fillStyle = COLOURS[result.labels[i] % 10];
      g.globalAlpha = 0.75;
      g.beginPath();
      g.arc(px, py, 2.2, 0, 2 * Math.PI);
      g.fill();
    }
    g.globalAlpha = 1;
    if (picked) {
      const [px, py] = toPx(picked.z[0], picked.z[1]);
      g.strokeStyle = '#111827';
      g.lineWidth = 2;
      g.beginPath();
      g.moveTo(px - 8, py);
      g.lineTo(px + 8, py);
      g.moveTo(px, py - 8);
      g.lineTo(px, py + 8);
      g.stroke();
    }
  });

  if (model && !model.hasLatent) {
    return (
      <div className="view" data-testid="latent-view">
        <p className="muted">This preset has no latent space. Choose a VAE or PixelVAE preset.</p>
      </div>
    );
  }

  const run = async (): Promise<void> => {
    setBusy('Embedding…');
    setPicked(null);
    try {
      setResult(await engine().latent({ limit, trainLimit: 5000, k: 5 }, callback((m: string) => setBusy(m))));
    } catch (error) {
      reportError('Embedding failed', error);
    } finally {
      setBusy(null);
    }
  };

  const onClick = async (e: React.MouseEvent<HTMLCanvasElement>): Promise<void> => {
    if (!result || result.projection !== 'direct' || !b || busy) return;
    const rect = e.currentTarget.getBoundingClientRect();
    const px = ((e.clientX - rect.left) / rect.width) * SIZE;
    const py = ((e.clientY - rect.top) / rect.height) * SIZE;
    const z = [b.minX + ((px - PAD) / (SIZE - 2 * PAD)) * (b.maxX - b.minX), b.minY + ((SIZE - PAD - py) / (SIZE - 2 * PAD)) * (b.maxY - b.minY)];
    setBusy('Decoding…');
    try {
      setPicked({ z, sample: await engine().decodeLatent(z, { count: 4, seed }) });
    } catch (error) {
      reportError('Decoding failed', error);
    } finally {
      setBusy(null);
    }
  };

  return (
    <div className="view" data-testid="latent-view">
      <div className="toolbar">
        <label className="field inline">
          <span>Test images</span>
          <select value={limit} onChange={(e) => setLimit(Number(e.currentTarget.value))}>
            {[500, 1000, 2000, 5000, 10000].map((n) => (
              <option key={n} value={n}>
                {n.toLocaleString('en-US')}
              </option>
            ))}
          </select>
        </label>
        <button type="button" disabled={disabled} onClick={() => void run()} data-testid="embed">
          Embed the test set
        </button>
        {busy && <span className="muted small">{busy}</span>}
      </div>
      <CollapseHint consequence="the test set embeds to nearly one point and every point of the plane decodes to the same kind of image" />
      {result && (
        <div className="latent">
          <div>
            <canvas
              ref={canvas}
              width={SIZE}
              height={SIZE}
              className={`latent-canvas${result.projection === 'direct' ? ' clickable' : ''}`}
              onClick={(e) => void onClick(e)}
              data-testid="latent-plot"
              role="img"
              aria-label="latent space scatter plot"
            />
            <div className="legend digits">
              {COLOURS.map((c, d) => (
                <span key={d} className="legend-item">
                  <span className="swatch" style={{ background: c }} /> {d}
                </span>
              ))}
            </div>
          </div>
          <div className="latent-side">
            <dl className="facts compact">
              <div>
                <dt>Latent dimension</dt>
                <dd>{result.dim}</dd>
              </div>
              <div>
                <dt>Shown</dt>
                <dd>{result.projection === 'direct' ? 'the latent plane itself (encoder means)' : 'first two principal components of the means'}</dd>
              </div>
              <div>
                <dt>{result.knn.k}-NN test error</dt>
                <dd data-testid="knn-error">{(result.knn.error * 100).toFixed(1)}%</dd>
              </div>
            </dl>
            <p className="muted small">
              k-NN on the encoder means: {result.count.toLocaleString('en-US')} test images classified against {result.knn.trainImages.toLocaleString('en-US')} training images
              (the paper: 7.2% for a PixelVAE vs 22.9% for a VAE, 2-D latents, full sets).
            </p>
            {result.projection === 'direct' ? (
              <p className="small">Click anywhere on the plane to decode that point.</p>
            ) : (
              <p className="muted small">Clicking decodes points of 2-D latents only; build a model with latent dim 2 for that.</p>
            )}
            {picked && (
              <div data-testid="decoded">
                <p className="small">
                  z = ({picked.z[0].toFixed(2)}, {picked.z[1].toFixed(2)}): four pixel-level samples
                </p>
                <ImageGrid batch={picked.sample.images} columns={4} cell={64} testId="decoded-grid" label="decoded samples" />
              </div>
            )}
          </div>
        </div>
      )}
    </div>
  );
}
