// The training rate and ETA shown while training. Times come from the worker's own clock, counted
// from the first training step (shader compilation before it is excluded), and the first readback
// interval is left out of the rate too: the first step pays one-time costs (buffer allocation,
// first submission) that later steps do not. Until a second readback, the ETA is the estimate from
// the adapter's calibration when there is one.

export interface RateReading {
  stepsPerSecond: number;
  eta: number | null;
  /** True while the ETA comes from the calibration estimate or a single interval, not a measured rate. */
  estimated: boolean;
}

/** Seconds of recent readbacks the rate averages over (long enough to smooth, short enough to follow a change). */
const WINDOW_S = 30;

export class StepRate {
  private readonly points: { t: number; step: number }[] = [];

  constructor(
    private readonly startStep: number,
    /** Estimated seconds per step before training (null: no estimate). */
    private readonly estimate: number | null,
  ) {}

  /** The reading before any step finished. */
  initial(untilStep: number): RateReading {
    return { stepsPerSecond: 0, eta: this.estimate !== null ? (untilStep - this.startStep) * this.estimate : null, estimated: true };
  }

  /** A readback: `elapsed` seconds since the first training step began, at `step`. */
  add(elapsed: number, step: number, untilStep: number): RateReading {
    this.points.push({ t: elapsed, step });
    while (this.points.length > 2 && elapsed - this.points[1].t > WINDOW_S) this.points.shift();
    const remaining = Math.max(0, untilStep - step);
    if (this.points.length < 2) {
      // One interval, which includes the first step's one-time costs: an upper bound on the time per step.
      const first = elapsed > 0 && step > this.startStep ? (step - this.startStep) / elapsed : 0;
      const perStep = this.estimate ?? (first > 0 ? 1 / first : null);
      return { stepsPerSecond: first, eta: perStep !== null ? remaining * perStep : null, estimated: true };
    }
    const a = this.points[0];
    const sps = elapsed > a.t ? (step - a.step) / (elapsed - a.t) : 0;
    return { stepsPerSecond: sps, eta: sps > 0 ? remaining / sps : null, estimated: false };
  }
}
