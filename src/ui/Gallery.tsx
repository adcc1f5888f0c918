// The first screen: the model zoo (public/models/manifest.json, trained by `npm run zoo`). Each card
// says what the model is, what it shows and its measured figures, and opens with one click into the
// view that shows it; the file comes from the app's own origin, is checked against the manifest
// (size, SHA-256) and opened like any checkpoint, so the model can be trained further in the lab.
// Without a manifest (or with an empty one) the app starts in the lab as before.
import { useEffect, useState } from 'react';
import { create } from 'zustand';
import { useLab } from '../state/lab';
import { formatFigure, type ZooEntry, type ZooManifest, type ZooView } from '../zoo/manifest';
import { fetchManifest, fetchZooModel } from '../zoo/load';
import './gallery.css';

const VIEW_LABELS: Record<ZooView, string> = { samples: 'Samples', levels: 'Level grids', latent: 'Latent map', reconstruct: 'Reconstruct uploads' };

/** A view the gallery asked for, performed once by the view itself when its model is ready. */
export const useZooRequest = create<{ pending: ZooView | null }>()(() => ({ pending: null }));

/** Calls `act` once for a pending gallery request of one of `views`, when `ready`. */
export function useZooAction(views: readonly ZooView[], ready: boolean, act: (view: ZooView) => void): void {
  const pending = useZooRequest((s) => s.pending);
  useEffect(() => {
    if (!ready || pending === null || !views.includes(pending)) return;
    useZooRequest.setState({ pending: null });
    act(pending);
  });
}

type LabSnapshot = ReturnType<typeof useLab.getState>;
const isSettled = (s: LabSnapshot): boolean => s.model !== null && (s.phase === 'ready' || s.phase === 'training' || s.phase === 'faulted');

function labSettled(): Promise<void> {
  if (isSettled(useLab.getState())) return Promise.resolve();
  return new Promise((resolve) => {
    const stop = useLab.subscribe((s) => {
      if (isSettled(s)) {
        stop();
        resolve();
      }
    });
  });
}

type Loaded = { state: 'loading' } | { state: 'none' } | { state: 'error'; message: string } | { state: 'ready'; manifest: ZooManifest };

function useManifest(): Loaded {
  const [loaded, setLoaded] = useState<Loaded>({ state: 'loading' });
  useEffect(() => {
    let live = true;
    fetchManifest(import.meta.env.BASE_URL)
      .then((manifest) => live && setLoaded(manifest && manifest.models.length > 0 ? { state: 'ready', manifest } : { state: 'none' }))
      .catch((error: unknown) => live && setLoaded({ state: 'error', message: error instanceof Error ? error.message : String(error) }));
    return () => {
      live = false;
    };
  }, []);
  return loaded;
}

const count = (n: number): string => (n >= 1e6 ? `${(n / 1e6).toFixed(n >= 1e7 ? 0 : 1)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(n >= 1e4 ? 0 : 1)}k` : String(n));
const duration = (s: number): string => (s < 90 ? `${Math.round(s)} s` : s < 5400 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`);

function Card({ entry, busy, onOpen }: { entry: ZooEntry; busy: boolean; onOpen: (entry: ZooEntry, view: ZooView) => void }) {
  const t = entry.training;
  return (
    <article className="zoo-card card" data-testid="zoo-card" data-id={entry.id}>
      <h3>
        <button type="button" className="zoo-open link-button" disabled={busy} onClick={() => onOpen(entry, entry.views[0])} data-testid={`zoo-open-${entry.id}`}>
          {entry.title}
        </button>
      </h3>
      <p className="small">{entry.what}</p>
      <p className="small zoo-shows">
        <strong>Shows:</strong> {entry.shows}
      </p>
      <dl className="zoo-figures small" data-testid="zoo-figures">
        {entry.figures.map((f) => (
          <div key={f.name} title={`${f.engine}; n = ${f.n}${f.k ? `, k = ${f.k}` : ''}, ${f.split} split; ± one standard error`}>
            <dt>{f.name}</dt>
            <dd>
              {formatFigure(f)}
              <span className="muted">
                {' '}
                (n {count(f.n)}
                {f.k ? `, k ${f.k}` : ''})
              </span>
            </dd>
          </div>
        ))}
      </dl>
      {entry.crossCheck && (
        <p className="muted small" title={entry.crossCheck.engine}>
          Cross-checked on {entry.crossCheck.n} images in the browser&rsquo;s engine: {entry.crossCheck.figure} {entry.crossCheck.value.toFixed(3)} vs{' '}
          {entry.crossCheck.twin.toFixed(3)} {entry.crossCheck.agrees ? '(agrees)' : '(DIFFERS)'}
        </p>
      )}
      <p className="muted small">
        {count(entry.params)} params · {count(t.imagesSeen)} images seen ({t.steps.toLocaleString('en-US')} steps of {t.batchSize}) in {duration(t.wallSeconds)} on {t.hardware} ·{' '}
        {entry.data.name === 'mnist' ? 'MNIST' : entry.data.name === 'demo' ? 'demo photos' : 'colour-MNIST'} · {entry.bytes < 2 ** 20 ? `${Math.round(entry.bytes / 1024)} KB` : `${(entry.bytes / 2 ** 20).toFixed(1)} MB`} (float16)
      </p>
      <div className="buttons">
        {entry.views.map((v) => (
          <button key={v} type="button" className={v === entry.views[0] ? '' : 'secondary'} disabled={busy} onClick={() => onOpen(entry, v)} data-testid={`zoo-view-${entry.id}-${v}`}>
            {VIEW_LABELS[v]}
          </button>
        ))}
      </div>
      <details className="small">
        <summary>Reproduce</summary>
        <code className="zoo-command">{t.command}</code>
      </details>
    </article>
  );
}

/**
 * The gallery. `onOpened(view)` is called once the model is the lab's current model; `onLab` leaves
 * for the lab without opening anything; `onEmpty` when this build has no zoo.
 */
export function Gallery({ onOpened, onLab, onEmpty }: { onOpened: (view: ZooView) => void; onLab: () => void; onEmpty: () => void }) {
  const loaded = useManifest();
  const openCheckpoint = useLab((s) => s.openCheckpoint);
  const labPhase = useLab((s) => (s.model ? s.phase : 'starting'));
  const [opening, setOpening] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    if (loaded.state === 'none') onEmpty();
  }, [loaded.state, onEmpty]);

  const open = async (entry: ZooEntry, view: ZooView): Promise<void> => {
    setOpening(entry.id);
    setError(null);
    try {
      const download = fetchZooModel(entry, import.meta.env.BASE_URL);
      // The lab's first model may still be building (or a saved run restoring): opening now would
      // be overtaken by it, so wait for it to settle while the file downloads.
      await labSettled();
      const bytes = await download;
      const before = useLab.getState().modelVersion;
      await openCheckpoint(new File([bytes as Uint8Array<ArrayBuffer>], entry.file), true);
      const after = useLab.getState();
      // openCheckpoint reports its own errors as notices; a model that did not change means it failed.
      if (after.modelVersion === before || after.model?.setup.preset !== entry.preset.replace(/^(mnist|hier)-/, '')) {
        throw new Error(`${entry.file} could not be opened: ${after.status}`);
      }
      useZooRequest.setState({ pending: view });
      onOpened(view);
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    } finally {
      setOpening(null);
    }
  };

  return (
    <section className="zoo" data-testid="gallery" data-lab-phase={labPhase}>
      <div className="zoo-head">
        <div>
          <h2>Trained models</h2>
          <p className="muted small">
            Trained with the PyTorch twin and shipped with the app as float16 weights; figures measured on those weights, ± one standard error. Open one to
            see what it shows, then keep training it here.
          </p>
        </div>
        <button type="button" className="secondary" onClick={onLab} data-testid="gallery-to-lab">
          Train your own
        </button>
      </div>
      {loaded.state === 'loading' && <p className="muted">Reading the model zoo…</p>}
      {loaded.state === 'none' && (
        <p className="muted" data-testid="gallery-empty">
          This build has no trained models yet (run <code>npm run zoo</code> to train them).
        </p>
      )}
      {loaded.state === 'error' && (
        <p className="inline-error" role="alert" data-testid="gallery-error">
          The model zoo could not be read: {loaded.message}
        </p>
      )}
      {error && (
        <p className="inline-error" role="alert" data-testid="gallery-open-error">
          {error}
        </p>
      )}
      {opening && (
        <p className="muted" data-testid="gallery-opening">
          <span className="spinner" aria-hidden="true" /> Opening {opening}…
        </p>
      )}
      {loaded.state === 'ready' && (
        <div className="zoo-grid">
          {loaded.manifest.models.map((m) => (
            <Card key={m.id} entry={m} busy={opening !== null} onOpen={(e, v) => void open(e, v)} />
          ))}
        </div>
      )}
    </section>
  );
}
