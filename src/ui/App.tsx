import { useEffect } from 'react';
import { useEngine } from '../state/engine';
import { AdapterCard } from './AdapterCard';
import { OpCheckCard } from './OpCheckCard';
import { NoWebGpu } from './NoWebGpu';

export function App() {
  const status = useEngine((s) => s.status);
  const probe = useEngine((s) => s.probe);

  useEffect(() => {
    void probe();
  }, [probe]);

  return (
    <div className="app">
      <header className="app-header">
        <div className="brand">
          <img src="/favicon.svg" alt="" width={28} height={28} />
          <h1>PixelVAE Lab</h1>
        </div>
        <p className="tagline">Train and explore PixelVAE models on your own GPU, in the browser.</p>
      </header>

      <main className="content" data-testid="status" data-phase={status.phase}>
        {(status.phase === 'idle' || status.phase === 'probing') && (
          <section className="card" aria-busy="true">
            <h2>Starting the engine…</h2>
            <p className="muted">Asking the browser for a WebGPU adapter and running a first computation on it.</p>
          </section>
        )}

        {status.phase === 'ready' && (
          <>
            <AdapterCard adapter={status.adapter} />
            <OpCheckCard op={status.op} />
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
