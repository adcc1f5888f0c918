import { useLab } from '../state/lab';
import type { ConvKernelVariant } from '../worker/client';

const DIRECTIONS = [
  ['forward', 'Convolution forward'],
  ['backwardInput', 'Convolution input gradient'],
  ['backwardWeight', 'Convolution weight gradient'],
] as const;
const VARIANT_NAMES: Record<ConvKernelVariant, string> = { cpu: 'CPU-shaped (many outputs per thread)', tiled: 'GPU-shaped (shared-memory tiles)' };

const ms = (xs: readonly number[]): string => xs.map((x) => (x < 10 ? x.toFixed(2) : x.toFixed(0))).join(' / ');

/** The conv kernels chosen for this adapter by the calibration's timing, with the timings behind the choice. */
export function KernelsCard() {
  const calibration = useLab((s) => s.calibration);
  const calibrating = useLab((s) => s.calibrating);
  const cv = calibration?.convVariants ?? null;
  return (
    <section className="card" data-testid="kernels">
      <div className="card-title">
        <h2>Kernels for this adapter</h2>
        {cv ? <span className="badge badge-ok">{cv.timed ? 'Chosen by timing' : 'CPU adapter'}</span> : <span className="badge">{calibrating ? 'Measuring…' : 'Not measured'}</span>}
      </div>
      {cv ? (
        <>
          <dl className="facts">
            {DIRECTIONS.map(([d, label]) => (
              <div key={d}>
                <dt>{label}</dt>
                <dd data-testid={`kernel-choice-${d}`}>{VARIANT_NAMES[cv.choice[d]]}</dd>
              </div>
            ))}
          </dl>
          {cv.timed ? (
            <>
              <p className="muted small">
                Each variant timed on {cv.shapes.length} layer shapes (best of two runs, ms; {cv.shapes.join('; ')}):
              </p>
              <ul className="muted small" data-testid="kernel-timings">
                {DIRECTIONS.map(([d, label]) => (
                  <li key={d}>
                    {label}: CPU-shaped {ms(cv.timings[d].cpu)}, GPU-shaped {ms(cv.timings[d].tiled)}
                  </li>
                ))}
              </ul>
              <p className="muted small">Measured once per adapter with the speed calibration and remembered; &ldquo;measure again&rdquo; in the setup panel repeats both.</p>
            </>
          ) : (
            <p className="muted small" data-testid="kernel-untimed">
              This adapter runs on the CPU, so the CPU-shaped kernels run without timing the GPU-shaped ones: the CPU-shaped ones were
              faster on both CPU adapters we measured (the GPU-shaped ones took up to 10x as long). On a GPU both are timed
              when the adapter&rsquo;s speed is measured.
            </p>
          )}
        </>
      ) : (
        <p className="muted small">The convolution kernels are chosen when this adapter&rsquo;s speed is measured; until then the CPU-shaped ones run.</p>
      )}
    </section>
  );
}
