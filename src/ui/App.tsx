import { useCallback, useEffect, useRef, useState } from 'react';
import { useEngine } from '../state/engine';
import { useLab } from '../state/lab';
import { AdapterCard } from './AdapterCard';
import { CheckpointPanel } from './CheckpointPanel';
import { EvalView } from './EvalView';
import { Gallery } from './Gallery';
import { LatentView } from './LatentView';
import { NoWebGpu } from './NoWebGpu';
import { Notices } from './Notices';
import { KernelsCard } from './KernelsCard';
import { OpCheckCard } from './OpCheckCard';
import { ReconstructView } from './ReconstructView';
import { SamplesView } from './SamplesView';
import { SetupPanel } from './SetupPanel';
import { TrainingView } from './TrainingView';
import { TrainPanel } from './TrainPanel';

const TABS = [
  ['training', 'Training'],
  ['samples', 'Samples'],
  ['reconstructions', 'Reconstructions'],
  ['latent', 'Latent space'],
  ['evaluate', 'Evaluate'],
  ['engine', 'Engine'],
] as const;
type Tab = (typeof TABS)[number][0];

function ModelLine() {
  const model = useLab((s) => s.model);
  const data = useLab((s) => s.data);
  const phase = useLab((s) => s.phase);
  const status = useLab((s) => s.status);
  if (!model) {
    return (
      <div className="model-line" data-testid="model-line" aria-busy="true">
        <span className="spinner" aria-hidden="true" /> {status}
      </div>
    );
  }
  const s = model.sizes;
  return (
    <div className="model-line" data-testid="model-line" data-phase={phase}>
      <strong>{model.setup.preset}</strong>
      <span>
        {model.imageSize}x{model.imageSize}
      </span>
      {model.latents ? (
        <span>
          z1 {model.latents.z1.join('×')} · z2 {model.latents.z2}
        </span>
      ) : (
        model.hasLatent && <span>latent {model.latentDim}</span>
      )}
      {model.autoregressive && !model.latents && (
        <span>
          {s.pixelLayers} layers × {s.pixelWidth}
        </span>
      )}
      <span>{model.params.toLocaleString('en-US')} params</span>
      {data && <span className="muted">{data.train.toLocaleString('en-US')} training images</span>}
      {phase === 'loading' && (
        <span className="muted">
          <span className="spinner" aria-hidden="true" /> {status}
        </span>
      )}
    </div>
  );
}

export function App() {
  const status = useEngine((s) => s.status);
  const probe = useEngine((s) => s.probe);
  const init = useLab((s) => s.init);
  const [tab, setTab] = useState<Tab>('training');
  // The zoo gallery is the first screen, unless the link names a setup (then the lab, as it asks).
  const [gallery, setGallery] = useState(() => !/[?&](preset|family)=/.test(window.location.search));
  const toLab = useCallback(() => setGallery(false), []);
  // An empty zoo: start in the lab as before (the gallery, opened by hand, says there is nothing yet).
  const firstGallery = useRef(true);
  const noZoo = useCallback(() => {
    if (firstGallery.current) setGallery(false);
    firstGallery.current = false;
  }, []);
  const colourModel = useLab((s) => s.model?.channels === 3);

  useEffect(() => {
    void probe();
  }, [probe]);

  useEffect(() => {
    if (status.phase === 'ready') void init(status.adapter);
  }, [status, init]);

  const adapter = status.phase === 'ready' ? status.adapter : null;
  return (
    <div className="app">
      <header className="app-header">
        <div className="brand">
          <img src="/favicon.svg" alt="" width={28} height={28} />
          <h1>PixelVAE Lab</h1>
        </div>
        <p className="tagline">Train and explore PixelVAE models on your own GPU, in the browser.</p>
        {status.phase === 'ready' && !gallery && (
          <button type="button" className="secondary" onClick={() => setGallery(true)} data-testid="open-gallery">
            Trained models
          </button>
        )}
        {adapter && (
          <div className="adapter-pill" data-testid="adapter-pill" title={adapter.description}>
            <span className="dot" /> {adapter.vendor || 'GPU'} {adapter.architecture || adapter.description}
            {adapter.isFallbackAdapter && <span className="badge badge-warn">CPU fallback</span>}
          </div>
        )}
      </header>

      <main className={status.phase === 'ready' && !gallery ? 'lab' : 'content'} data-testid="status" data-phase={status.phase}>
        {(status.phase === 'idle' || status.phase === 'probing') && (
          <section className="card" aria-busy="true">
            <h2>Starting the engine…</h2>
            <p className="muted">Asking the browser for a WebGPU adapter and running a first computation on it.</p>
          </section>
        )}

        {status.phase === 'ready' && gallery && (
          <Gallery
            onOpened={(view) => {
              firstGallery.current = false;
              setTab(view === 'reconstruct' ? 'reconstructions' : view === 'levels' ? 'samples' : view);
              setGallery(false);
            }}
            onLab={() => {
              firstGallery.current = false;
              toLab();
            }}
            onEmpty={noZoo}
          />
        )}

        {status.phase === 'ready' && !gallery && (
          <>
            <aside className="sidebar">
              <SetupPanel />
              <TrainPanel />
              <CheckpointPanel />
            </aside>
            <section className="workspace">
              <Notices />
              <ModelLine />
              <nav className="tabs" role="tablist">
                {TABS.map(([id, label]) => (
                  <button key={id} type="button" role="tab" aria-selected={tab === id} className={tab === id ? 'tab active' : 'tab'} onClick={() => setTab(id)} data-testid={`tab-${id}`}>
                    {label}
                  </button>
                ))}
              </nav>
              <div className="card tab-panel" role="tabpanel">
                {tab === 'training' && <TrainingView />}
                {tab === 'samples' && <SamplesView />}
                {tab === 'reconstructions' && <ReconstructView />}
                {tab === 'latent' &&
                  (colourModel ? (
                    <div className="view" data-testid="latent-view">
                      <p className="muted">
                        The latent plane is for the MNIST models. The colour model&rsquo;s latents are a vector z2 and a map z1: see what each
                        controls in Samples (vary only one level) and Reconstructions (keep z2 or z1).
                      </p>
                    </div>
                  ) : (
                    <LatentView />
                  ))}
                {tab === 'evaluate' && <EvalView />}
                {tab === 'engine' && (
                  <div className="view engine-view">
                    <AdapterCard adapter={status.adapter} />
                    <OpCheckCard op={status.op} />
                    <KernelsCard />
                  </div>
                )}
              </div>
            </section>
          </>
        )}

        {status.phase === 'unavailable' && <NoWebGpu reason={status.reason} message={status.message} />}

        {status.phase === 'error' && (
          <section className="card card-error" data-testid="engine-error">
            <h2>The engine could not start</h2>
            <p>WebGPU is present, but running the first computation failed:</p>
            <pre className="message">{status.message}</pre>
            <button type="button" onClick={() => void probe()}>
              Try again
            </button>
          </section>
        )}
      </main>

      <footer className="app-footer muted">
        PixelVAE (Gulrajani et al., ICLR 2017). Everything runs locally on your GPU through WebGPU; nothing is uploaded.
      </footer>
    </div>
  );
}
