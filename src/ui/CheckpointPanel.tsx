// Download the model as .safetensors (config in its metadata) plus a .json copy of the config;
// open a checkpoint made here, on another machine or by the command line; restore an earlier run
// (one a reset, a new build or an opened file replaced), which the browser keeps.
import { useRef } from 'react';
import { useLab } from '../state/lab';

export function CheckpointPanel() {
  const phase = useLab((s) => s.phase);
  const model = useLab((s) => s.model);
  const savedStep = useLab((s) => s.savedStep);
  const download = useLab((s) => s.downloadCheckpoint);
  const downloadConfig = useLab((s) => s.downloadConfig);
  const open = useLab((s) => s.openCheckpoint);
  const earlier = useLab((s) => s.earlier);
  const restoreEarlier = useLab((s) => s.restoreEarlier);
  const input = useRef<HTMLInputElement>(null);
  const canSave = !!model && (phase === 'ready' || phase === 'faulted');
  return (
    <section className="card panel" data-testid="checkpoints">
      <h2>Checkpoint</h2>
      <p className="muted small">
        A .safetensors file with the parameters, Adam state and the run&rsquo;s config; the command line (<code>npm run cli</code>) reads and writes the same files.
      </p>
      <div className="buttons">
        <button type="button" disabled={!canSave} onClick={() => void download()} data-testid="download-checkpoint">
          {phase === 'faulted' ? `Download last saved (step ${savedStep ?? '?'})` : 'Download .safetensors'}
        </button>
        <button type="button" className="secondary" disabled={!canSave} onClick={() => void downloadConfig()} data-testid="download-config">
          Config .json
        </button>
      </div>
      <div className="buttons">
        <button type="button" className="secondary" disabled={phase === 'training' || phase === 'faulted'} onClick={() => input.current?.click()} data-testid="open-checkpoint">
          Open a checkpoint…
        </button>
        <input
          ref={input}
          type="file"
          accept=".safetensors,application/octet-stream"
          hidden
          data-testid="checkpoint-input"
          onChange={(e) => {
            const file = e.currentTarget.files?.[0];
            e.currentTarget.value = '';
            if (file) void open(file);
          }}
        />
      </div>
      {earlier.length > 0 && (
        <div data-testid="earlier-runs">
          <h3 className="small">Earlier runs in this browser</h3>
          <ul className="earlier-runs">
            {earlier.map((r) => (
              <li key={r.id} data-testid="earlier-run">
                <span>
                  {r.setup.preset}, step {r.step}
                  <span className="muted"> · {new Date(r.savedAt).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })}</span>
                </span>
                <button type="button" className="secondary small-button" disabled={phase !== 'ready'} onClick={() => void restoreEarlier(r.id)} data-testid="restore-earlier">
                  Restore
                </button>
              </li>
            ))}
          </ul>
        </div>
      )}
    </section>
  );
}
