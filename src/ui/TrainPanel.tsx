// Start, pause, resume and reset; the target step count; a progress bar with ETA.
import { useLab } from '../state/lab';
import { seconds } from './format';

export function TrainPanel() {
  const phase = useLab((s) => s.phase);
  const model = useLab((s) => s.model);
  const step = useLab((s) => s.step);
  const target = useLab((s) => s.targetSteps);
  const rate = useLab((s) => s.rate);
  const status = useLab((s) => s.status);
  const compile = useLab((s) => s.compile);
  const savedStep = useLab((s) => s.savedStep);
  const setTarget = useLab((s) => s.setTargetSteps);
  const train = useLab((s) => s.train);
  const pause = useLab((s) => s.pause);
  const reset = useLab((s) => s.reset);
  const training = phase === 'training';
  // The MNIST download's percentage, from its status line (src/worker/mnist-download.ts ends it "(N%)").
  const download = /^Downloading .*\((\d+)%\)$/.exec(status);
  const fraction = target > 0 ? Math.min(1, step / target) : 0;
  const startLabel = step === 0 ? 'Start' : step >= target ? `Train ${target} more` : 'Resume';
  return (
    <section className="card panel" data-testid="train-panel">
      <div className="card-title">
        <h2>Training</h2>
        <span className={`badge ${training ? 'badge-run' : 'badge-idle'}`} data-testid="train-state">
          {training ? 'running' : phase === 'faulted' ? 'stopped' : step >= target && step > 0 ? 'done' : step > 0 ? 'paused' : 'idle'}
        </span>
      </div>
      <label className="field wide">
        <span>Train until step</span>
        <input type="number" min={1} value={target} disabled={training} onChange={(e) => Number.isFinite(e.currentTarget.valueAsNumber) && setTarget(e.currentTarget.valueAsNumber)} data-testid="target-steps" />
      </label>
      <div className="progress" role="progressbar" aria-valuemin={0} aria-valuemax={target} aria-valuenow={step} data-testid="train-progress">
        <div className="progress-fill" style={{ width: `${(fraction * 100).toFixed(1)}%` }} />
      </div>
      <div className="progress-facts">
        <span>
          step <strong data-testid="step">{step}</strong> / {target}
        </span>
        <span>{rate.stepsPerSecond > 0 ? `${rate.stepsPerSecond < 1 ? rate.stepsPerSecond.toFixed(2) : rate.stepsPerSecond.toFixed(1)} steps/s` : ''}</span>
        <span data-testid="eta" data-estimated={rate.estimated ? 'true' : 'false'} title={rate.estimated ? 'estimated from the adapter’s measured speed until training steps are timed' : 'from the measured rate of the last steps'}>
          ETA {training ? `${rate.estimated && rate.eta !== null ? '≈ ' : ''}${seconds(rate.eta)}` : '—'}
        </span>
      </div>
      {compile && (
        <div className="compile" data-testid="compile-progress">
          <span className="small">
            Compiling shaders ({compile.what}) {compile.done}/{compile.total}
          </span>
          <div className="progress thin">
            <div className="progress-fill" style={{ width: `${((compile.done / Math.max(1, compile.total)) * 100).toFixed(0)}%` }} />
          </div>
        </div>
      )}
      <p className="muted small status-line" data-testid="train-status">
        {status}
        {savedStep !== null ? ` · saved in this browser at step ${savedStep}` : ''}
      </p>
      {download && (
        <div className="progress thin" data-testid="download-progress" role="progressbar" aria-valuemin={0} aria-valuemax={100} aria-valuenow={Number(download[1])}>
          <div className="progress-fill" style={{ width: `${download[1]}%` }} />
        </div>
      )}
      <div className="buttons">
        {training ? (
          <button type="button" onClick={() => void pause()} data-testid="pause">
            Pause
          </button>
        ) : (
          <button type="button" disabled={!model || phase !== 'ready'} onClick={() => void train()} data-testid="start">
            {startLabel}
          </button>
        )}
        <button type="button" className="secondary" disabled={!model || phase !== 'ready'} onClick={() => void reset()} data-testid="reset">
          Reset
        </button>
      </div>
    </section>
  );
}
