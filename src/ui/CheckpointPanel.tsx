// Download the model as .safetensors (config in its metadata) plus a .json copy of the config;
// open a checkpoint made here, on another machine or by the command line.
import { useRef } from 'react';
import { useLab } from '../state/lab';

export function CheckpointPanel() {
  const phase = useLab((s) => s.phase);
  const model = useLab((s) => s.model);
  const savedStep = useLab((s) => s.savedStep);
  const download = useLab((s) => s.downloadCheckpoint);
  const downloadConfig = useLab((s) => s.downloadConfig);
  const open = useLab((s) => s.openCheckpoint);
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
    </section>
  );
}
