// Data set, model preset and sizes, with the parameter count, FLOPs and the estimated training time
// on this adapter (from its measured speed) before anything is built.
import { SLOW_PER_THOUSAND_S, stepSecondsOf } from '../state/estimate';
import { useLab } from '../state/lab';
import { sameSetup } from '../state/url';
import { ColourDataPicker } from './ColourDataPicker';
import { compact, seconds } from './format';

function NumberField({ id, label, value, min, max, step, onChange, help, testId }: { id: string; label: string; value: number; min?: number; max?: number; step?: number | 'any'; onChange: (v: number) => void; help?: string; testId?: string }) {
  return (
    <label className="field" htmlFor={id} title={help}>
      <span>{label}</span>
      <input
        id={id}
        type="number"
        value={Number.isFinite(value) ? value : ''}
        min={min}
        max={max}
        step={step ?? 1}
        data-testid={testId}
        onChange={(e) => {
          const v = e.currentTarget.valueAsNumber;
          if (Number.isFinite(v)) onChange(v);
        }}
      />
    </label>
  );
}

/** What to do about a slow setup, in words. */
function fallbackNote(family: string): string {
  return family === 'mnist'
    ? ': choose the CPU or Tiny sizes (a smaller image size, fewer PixelCNN layers, smaller widths) or a machine with a GPU'
    : ': choose the Tiny preset or a smaller image size and widths, or a machine with a GPU';
}

export function SetupPanel() {
  const families = useLab((s) => s.families);
  const draft = useLab((s) => s.draft);
  const description = useLab((s) => s.description);
  const model = useLab((s) => s.model);
  const phase = useLab((s) => s.phase);
  const setDraft = useLab((s) => s.setDraft);
  const setSizes = useLab((s) => s.setSizes);
  const build = useLab((s) => s.build);
  const calibration = useLab((s) => s.calibration);
  const step = useLab((s) => s.step);
  const calibrating = useLab((s) => s.calibrating);
  const calibrate = useLab((s) => s.calibrate);
  if (!draft) return null;
  const family = families.find((f) => f.id === draft.family);
  const preset = family?.presets.find((p) => p.id === draft.preset);
  const locked = phase === 'training' || phase === 'loading' || phase === 'faulted';
  const changed = !model || !sameSetup(model.setup, draft);
  const summary = description?.ok ? description.summary : null;
  const perStep = summary ? stepSecondsOf(summary, draft.batchSize, calibration) : null;
  const perThousand = perStep !== null ? perStep * 1000 : null;
  const slow = perThousand !== null && perThousand >= SLOW_PER_THOUSAND_S;
  return (
    <section className="card panel" data-testid="setup">
      <h2>Model</h2>
      <label className="field wide">
        <span>Data set</span>
        <select value={draft.family} disabled={locked} onChange={(e) => setDraft({ family: e.currentTarget.value as typeof draft.family })} data-testid="family">
          {families.map((f) => (
            <option key={f.id} value={f.id} disabled={!f.available}>
              {f.label}
              {f.available ? '' : ' (coming soon)'}
            </option>
          ))}
        </select>
      </label>
      {families.filter((f) => !f.available).map((f) => (
        <p key={f.id} className="muted small" title={f.note}>
          {f.label}: coming soon.
        </p>
      ))}
      {draft.family === 'hierarchical' && <ColourDataPicker locked={locked} />}
      <label className="field wide">
        <span>Preset</span>
        <select value={draft.preset} disabled={locked} onChange={(e) => setDraft({ preset: e.currentTarget.value })} data-testid="preset">
          {family?.presets.map((p) => (
            <option key={p.id} value={p.id}>
              {p.label}
            </option>
          ))}
        </select>
      </label>
      {preset && <p className="muted small">{preset.summary}</p>}
      {(family?.quickSizes.length ?? 0) > 0 && <div className="quick">
        {family?.quickSizes.map((q) => (
          <button key={q.id} type="button" className="chip" disabled={locked} onClick={() => setSizes(q.sizes)} title={q.label} data-testid={`quick-${q.id}`}>
            {q.label.split(' (')[0]}
          </button>
        ))}
      </div>}
      <details className="sizes" open>
        <summary>Sizes</summary>
        <div className="field-grid">
          {family?.sizeFields.map((f) => (
            <NumberField
              key={f.key}
              id={`size-${f.key}`}
              label={f.label}
              value={draft.sizes[f.key] ?? preset?.defaults[f.key] ?? 0}
              min={f.min}
              max={f.max}
              step={f.odd ? 2 : (f.multipleOf ?? 1)}
              help={f.help}
              testId={`size-${f.key}`}
              onChange={(v) => setSizes({ [f.key]: v })}
            />
          ))}
        </div>
      </details>
      <details className="sizes">
        <summary>Training run</summary>
        <div className="field-grid">
          <NumberField id="batch" label="Batch size" value={draft.batchSize} min={1} max={1000} onChange={(v) => setDraft({ batchSize: v })} testId="batch" />
          <NumberField id="lr" label="Learning rate" value={draft.lr} min={0} max={1} step="any" onChange={(v) => setDraft({ lr: v })} testId="lr" />
          <NumberField id="seed" label="Seed" value={draft.seed} onChange={(v) => setDraft({ seed: v })} help={draft.family === 'hierarchical' ? 'batch order and noise' : 'batch order, binarization and noise'} testId="seed" />
          <NumberField id="init" label="Init seed" value={draft.initSeed} onChange={(v) => setDraft({ initSeed: v })} help="parameter initialisation" testId="init-seed" />
        </div>
      </details>
      <dl className="cost" data-testid="cost">
        <div>
          <dt>Parameters</dt>
          <dd data-testid="param-count">{summary ? summary.params.toLocaleString('en-US') : '—'}</dd>
        </div>
        <div>
          <dt>Forward FLOPs / image{draft.family === 'hierarchical' ? ' (est.)' : ''}</dt>
          <dd data-testid="flops">{summary ? compact(summary.flopsPerImage) : '—'}</dd>
        </div>
        <div>
          <dt>Training FLOPs / step</dt>
          <dd>{summary ? compact(3 * summary.flopsPerImage * draft.batchSize) : '—'}</dd>
        </div>
        <div>
          <dt>Est. time / 1000 steps</dt>
          <dd data-testid="estimate" data-seconds-per-step={perStep ?? undefined}>
            {perThousand !== null ? `≈ ${seconds(perThousand)}` : calibrating ? 'measuring…' : '—'}
          </dd>
        </div>
      </dl>
      {calibration && (
        <p className="muted small" data-testid="calibration">
          Estimated from this adapter&rsquo;s measured speed ({calibration.gflops < 10 ? calibration.gflops.toFixed(2) : calibration.gflops.toFixed(0)} GFLOP/s on a convolution,{' '}
          {calibration.dispatchMs.toFixed(2)} ms per dispatch of a small model&rsquo;s step); an estimate, within 3x of measured steps in our tests.{' '}
          <button type="button" className="link-button" disabled={calibrating || locked} onClick={() => void calibrate()} data-testid="recalibrate">
            {calibrating ? 'measuring…' : 'measure again'}
          </button>
        </p>
      )}
      {slow && (
        <p className="inline-warn" role="alert" data-testid="cost-warning">
          This setup would take about {seconds(perThousand)} per 1000 training steps on this adapter
          {fallbackNote(summary?.setup.family ?? draft.family)}.
        </p>
      )}
      {description && !description.ok && (
        <p className="inline-error" data-testid="setup-error">
          {description.message}
        </p>
      )}
      <button type="button" className={changed ? '' : 'secondary'} disabled={locked || !description?.ok || !changed} onClick={() => void build()} data-testid="build">
        {model ? (changed ? `${slow ? 'Build anyway (slow here)' : 'Build this model'}${step > 0 ? '; the trained one is kept as an earlier run' : ''}` : 'Built') : slow ? 'Build anyway (slow here)' : 'Build model'}
      </button>
    </section>
  );
}
