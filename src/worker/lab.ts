// The worker's state and the jobs every model family shares: GPU job ordering, the current session,
// the training loop (metrics, validation, autosave, NaN and device-loss handling), checkpoint files
// and the autosave's restore. What a family does with its own model (data, sampling, reconstructions,
// evaluation) lives behind FamilySession / FamilyDriver (session.ts; family-mnist.ts, family-hier.ts).
//
// GPU jobs never overlap: each runs inside `exclusive`, so a sample asked for during training runs
// between two training steps (engine scopes are not re-entrant across awaits).
import { DeviceLostError, type GpuContext } from '../gpu/context';
import { CheckpointError, checkpointNonFinite, decodeCheckpoint, type Checkpoint, type JsonValue } from '../io/checkpoint';
import { calibrateAdapter } from './calibrate';
import type {
  AutosaveInfo,
  Calibration,
  CheckpointFile,
  ColourFilesInfo,
  Created,
  Description,
  EarlierRunInfo,
  EvalOptions,
  EvalResult,
  FamilyId,
  History,
  LatentResult,
  ReconstructionRow,
  Restored,
  SampleRequest,
  SampleResult,
  Setup,
  TrainEvent,
  TrainOptions,
  TrainOutcome,
  TrainPoint,
  UploadResult,
  UploadedFile,
  ValidPoint,
} from './api';
import { ColourDataStore } from './colour-data';
import { FAMILIES } from './families';
import { HierDriver } from './family-hier';
import { MnistDriver } from './family-mnist';
import { message, type FamilyDriver, type FamilySession } from './session';
import { MAX_EARLIER_RUNS, clearRun, earlierRuns, loadEarlierRun, loadRun, newRunId, runId, saveRun } from './store';

/** Chart points kept in a checkpoint's metadata and the autosave (older ones are thinned). */
const MAX_HISTORY = 1500;

interface Snapshot {
  setup: Setup;
  step: number;
  bytes: Uint8Array;
  history: History;
}

/** Keeps at most `max` points: the newest half as they are, older ones thinned evenly. */
function thin<T>(points: T[], max: number): T[] {
  if (points.length <= max) return points;
  const keepNew = Math.floor(max / 2);
  const old = points.slice(0, points.length - keepNew);
  const stride = Math.ceil(old.length / (max - keepNew));
  return [...old.filter((_, i) => i % stride === 0), ...points.slice(points.length - keepNew)];
}

function familyLabel(id: FamilyId): string {
  return FAMILIES.find((f) => f.id === id)?.label ?? id;
}

export class Lab {
  private ctx: GpuContext | null = null;
  private session: FamilySession | null = null;
  private lastGood: Snapshot | null = null;
  /** Identity of the current run in the autosave (a reset, a build or an opened file starts another). */
  private runId = newRunId();
  private training = false;
  private pauseRequested = false;
  private queue: Promise<unknown> = Promise.resolve();
  private faulted: string | null = null;
  private readonly colour = new ColourDataStore(() => this.gpu().sync());
  private readonly hier = new HierDriver(this.colour);
  private readonly drivers: Record<FamilyId, FamilyDriver> = {
    mnist: new MnistDriver(() => this.gpu().sync()),
    hierarchical: this.hier,
  };

  attach(ctx: GpuContext): void {
    this.ctx = ctx;
    this.hier.fallbackAdapter = ctx.adapter.isFallbackAdapter;
  }

  /** Runs GPU jobs one at a time, in order of request. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(() => {
      if (this.faulted) throw new DeviceLostError(this.faulted);
      return fn();
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  private gpu(): GpuContext {
    if (!this.ctx) throw new Error('The GPU is not ready yet.');
    return this.ctx;
  }

  private need(): FamilySession {
    if (!this.session) throw new Error('No model yet: choose a preset and build it first.');
    return this.session;
  }

  private driver(family: FamilyId): FamilyDriver {
    const d = this.drivers[family];
    if (!d) throw new Error(`unknown model family "${family}"`);
    return d;
  }

  /** The family whose checkpoint this is (throws a readable error for a checkpoint of no known family). */
  private driverOf(checkpoint: Checkpoint, name: string): FamilyDriver {
    const d = Object.values(this.drivers).find((x) => x.owns(checkpoint));
    if (!d) throw new CheckpointError(`${name}: its preset '${checkpoint.config.preset}' is not a model this app knows (MNIST presets start with mnist-, hierarchical ones with hier-).`);
    return d;
  }

  // ---- models -----------------------------------------------------------------------------------------

  async describe(setup: Setup): Promise<Description> {
    let driver: FamilyDriver;
    try {
      driver = this.driver(setup.family);
      driver.check(setup);
    } catch (error) {
      return { ok: false, message: message(error) };
    }
    return this.exclusive(async () => {
      try {
        return { ok: true, summary: driver.describe(setup) };
      } catch (error) {
        return { ok: false, message: message(error) };
      }
    });
  }

  private disposeSession(): void {
    this.session?.dispose();
    this.session = null;
  }

  private adopt(session: FamilySession): void {
    this.disposeSession();
    this.session = session;
  }

  /**
   * Builds a fresh model (a new run). A trained current model is first saved as it is, so the
   * autosave keeps it as an earlier run that restoreEarlier() brings back.
   */
  async create(setup: Setup, onStatus?: (m: string) => void): Promise<Created> {
    if (this.training) throw new Error('Pause training before building another model.');
    const driver = this.driver(setup.family);
    driver.check(setup);
    const kept = await this.keepCurrent();
    return this.exclusive(async () => {
      const session = await driver.create(setup, onStatus);
      this.adopt(session);
      this.runId = newRunId();
      const snap = await this.snapshot(session);
      this.lastGood = Lab.finite(snap) ? snap : null;
      // Saved as the current run at once, so the replaced one is listed (and a reload opens this one).
      await this.autosave().catch(() => undefined);
      return { summary: session.summary, data: session.data, kept };
    });
  }

  /** A fresh initialisation of the same setup; the trained state stays restorable (an earlier run). */
  async reset(): Promise<Created> {
    const s = this.need();
    return this.create(s.setup);
  }

  /**
   * Saves the current model to the autosave when it holds training, so that whatever replaces it next
   * pushes it to the earlier runs instead of overwriting it. Returns what was kept, or null.
   */
  private async keepCurrent(): Promise<EarlierRunInfo | null> {
    const s = this.session;
    if (!s || s.step === 0 || this.faulted) return null;
    const step = await this.exclusive(() => this.autosave()).catch(() => null);
    if (typeof step !== 'number') return null;
    return { id: this.runId, setup: s.setup, step, savedAt: Date.now() };
  }

  /** Measures the adapter's speed for the setup panel's training-time estimates (between other GPU jobs). */
  async calibrate(): Promise<Calibration> {
    const ctx = this.gpu();
    return this.exclusive(() => calibrateAdapter(ctx));
  }

  async earlierRuns(): Promise<EarlierRunInfo[]> {
    return earlierRuns();
  }

  /** Brings back an earlier run from the autosave; the current one (when trained) becomes an earlier run. */
  async restoreEarlier(id: string): Promise<Restored> {
    if (this.training) throw new Error('Pause training before restoring another run.');
    // Keeping the current model first may move the wanted run (when it was still the stored current one) to the earlier runs.
    await this.keepCurrent();
    const current = await loadRun();
    const run = (await loadEarlierRun(id)) ?? (current && runId(current) === id ? current : null);
    if (!run) throw new Error(`That run is no longer saved in this browser (it keeps the current run and ${MAX_EARLIER_RUNS} earlier ones).`);
    let note: string | undefined;
    try {
      note = (await this.exclusive(() => this.openSnapshot(run.bytes, run.setup, run.history, 'saved run'))).note;
    } catch (error) {
      throw new Error(`The earlier run could not be restored (${message(error)}); it was left in place and the current model is unchanged.`);
    }
    this.runId = runId(run);
    await this.exclusive(() => this.autosave()).catch(() => undefined);
    return this.restored(note);
  }

  async loadColourFiles(files: UploadedFile[], size: number, onProgress?: (m: string) => void): Promise<ColourFilesInfo> {
    return this.colour.setFiles(files, size, onProgress);
  }

  private async snapshot(s: FamilySession): Promise<Snapshot> {
    const history = { train: thin(s.history.train, MAX_HISTORY), valid: thin(s.history.valid, MAX_HISTORY) };
    const bytes = await s.save({ history: history as unknown as JsonValue, app: 'pixelvae-lab web' });
    return { setup: s.setup, step: s.step, bytes, history: { train: [...s.history.train], valid: [...s.history.valid] } };
  }

  /** Whether every value of a snapshot (parameters, buffers and Adam's moments) is finite. */
  private static finite(snap: Snapshot): boolean {
    return checkpointNonFinite(decodeCheckpoint(snap.bytes, 'snapshot', { allowNonFinite: true })).length === 0;
  }

  /**
   * Snapshot to memory (the last good state) and IndexedDB; refuses a state with NaN or Inf anywhere,
   * moments included (a NaN moment turns the next update into NaN weights), so the last good state
   * and the autosave are never a diverged state.
   */
  private async autosave(): Promise<number | 'non-finite' | null> {
    const s = this.session;
    if (!s) return null;
    const snap = await this.snapshot(s);
    if (!Lab.finite(snap)) return 'non-finite';
    this.lastGood = snap;
    await saveRun({ id: this.runId, setup: snap.setup, step: snap.step, savedAt: Date.now(), bytes: snap.bytes, history: { train: thin(snap.history.train, MAX_HISTORY), valid: thin(snap.history.valid, MAX_HISTORY) } });
    return snap.step;
  }

  // ---- training ---------------------------------------------------------------------------------------

  async train(options: TrainOptions, onEvent: (event: TrainEvent) => void): Promise<TrainOutcome> {
    const s = this.need();
    if (this.training) throw new Error('Training is already running.');
    const emit = (event: TrainEvent): void => {
      Promise.resolve(onEvent(event)).catch(() => undefined);
    };
    this.training = true;
    this.pauseRequested = false;
    const ctx = this.gpu();
    const batch = s.setup.batchSize;
    try {
      await this.exclusive(async () => {
        emit({ kind: 'status', message: 'Compiling the training step’s shaders…' });
        await s.prewarmTraining((done, total) => emit({ kind: 'compile', done, total, what: 'training step' }));
        await s.prewarmValidation(Math.min(batch, 100, options.validLimit), (done, total) => emit({ kind: 'compile', done, total, what: 'validation' }));
      });
      const started = performance.now();
      let logEvery = 1;
      let sinceLog = 0;
      let logStart = performance.now();
      let lastSave = performance.now();
      const validate = async (): Promise<void> => {
        const point: ValidPoint = await this.exclusive(() => s.validate(options.validLimit, Math.min(batch, 100)));
        if (Number.isFinite(point.negElbo)) {
          s.history.valid.push(point);
          emit({ kind: 'valid', point });
        }
      };
      /** Saves; false when the parameters are no longer finite (a NaN that the loss did not show, e.g. behind a ReLU). */
      const save = async (): Promise<boolean> => {
        const step = await this.exclusive(() => this.autosave());
        lastSave = performance.now();
        if (step === 'non-finite') return false;
        if (step !== null) emit({ kind: 'saved', step });
        return true;
      };
      emit({ kind: 'status', message: 'Training' });
      while (s.step < options.untilStep && !this.pauseRequested) {
        await this.exclusive(async () => {
          s.trainStep();
          await ctx.throttle();
        });
        sinceLog += 1;
        const atEnd = s.step >= options.untilStep || this.pauseRequested;
        if (sinceLog >= logEvery || atEnd) {
          const m = await this.exclusive(() => s.readMetrics());
          const now = performance.now();
          const seconds = Math.max((now - logStart) / 1000, 1e-6);
          // Read back about twice a second whatever the speed of the adapter.
          logEvery = Math.max(1, Math.min(100, Math.round((0.5 * m.steps) / seconds)));
          logStart = now;
          sinceLog = 0;
          if (!Number.isFinite(m.values.loss) || !Number.isFinite(m.values.kl)) return await this.diverged(s, m.values.loss, 'loss');
          const point: TrainPoint = { step: s.step, ...m.values, imagesPerSecond: (m.steps * batch) / seconds };
          s.history.train.push(point);
          emit({ kind: 'metrics', point, step: s.step, untilStep: options.untilStep, elapsedSeconds: (now - started) / 1000 });
          if (now - lastSave > options.autosaveSeconds * 1000 && !(await save())) return await this.diverged(s, Number.NaN, 'parameters');
        }
        if (options.validEvery > 0 && s.step % options.validEvery === 0 && s.step < options.untilStep) await validate();
      }
      const reached = s.step >= options.untilStep;
      if (!(await save())) return await this.diverged(s, Number.NaN, 'parameters');
      if (reached) await validate();
      return { kind: reached ? 'done' : 'paused', step: s.step };
    } catch (error) {
      if (error instanceof DeviceLostError || ctx.isLost) {
        this.faulted = message(error);
        return { kind: 'device-lost', step: s.step, message: message(error), savedStep: this.lastGood?.step ?? null };
      }
      return { kind: 'error', step: s.step, message: message(error) };
    } finally {
      this.training = false;
      this.pauseRequested = false;
    }
  }

  private async diverged(s: FamilySession, loss: number, what: 'loss' | 'parameters'): Promise<TrainOutcome> {
    const bad = s.step;
    const good = this.lastGood;
    const found = what === 'loss' ? `The loss became ${loss} (not a number) at step ${bad}` : `The parameters or the optimizer's moments stopped being finite numbers (NaN or Inf) by step ${bad}`;
    if (!good) throw new Error(`${found} and there is no earlier state to go back to`);
    await this.exclusive(() => this.openSnapshot(good.bytes, good.setup, good.history));
    return {
      kind: 'diverged',
      step: bad,
      restoredStep: good.step,
      message: `${found}. Training stopped and the model was restored to its last good state, step ${good.step}. Try a lower learning rate.`,
    };
  }

  async pause(): Promise<void> {
    if (this.training) this.pauseRequested = true;
  }

  // ---- exploring (each family's own) ------------------------------------------------------------------

  async sample(request: SampleRequest, onProgress?: (done: number, total: number) => void): Promise<SampleResult> {
    const s = this.need();
    return this.exclusive(() => s.sample(request, onProgress));
  }

  async reconstructTest(options: { count: number; samples: number; seed: number; offset: number; level?: 'top' | 'middle' }): Promise<ReconstructionRow[]> {
    const s = this.need();
    return this.exclusive(() => s.reconstructTest(options));
  }

  async reconstructUploads(files: UploadedFile[], options: { samples: number; seed: number; level?: 'top' | 'middle' }): Promise<UploadResult> {
    const s = this.need();
    return this.exclusive(() => s.reconstructUploads(files, options));
  }

  async latent(options: { limit: number; trainLimit: number; k: number }, onProgress?: (m: string) => void): Promise<LatentResult> {
    const s = this.need();
    if (!s.latent) throw new Error('The latent-space view is for the MNIST models (the colour model\'s latents are maps, not points).');
    return this.exclusive(() => s.latent!(options, onProgress));
  }

  async decodeLatent(z: number[], options: { count: number; seed: number }): Promise<SampleResult> {
    const s = this.need();
    if (!s.decodeLatent) throw new Error('Decoding a latent point is for the MNIST models.');
    return this.exclusive(() => s.decodeLatent!(z, options));
  }

  async evaluate(options: EvalOptions, onProgress: (done: number, total: number) => void): Promise<EvalResult> {
    const s = this.need();
    if (!Number.isInteger(options.k) || options.k < 1 || options.k > 1000) throw new Error(`k must be 1 to 1000 (got ${options.k})`);
    return this.exclusive(() => s.evaluate(options, onProgress));
  }

  // ---- checkpoints ------------------------------------------------------------------------------------

  private fileOf(bytes: Uint8Array, name: string, step: number): CheckpointFile {
    const checkpoint = decodeCheckpoint(bytes);
    return { name, bytes, configJson: JSON.stringify(checkpoint.config, null, 2), step };
  }

  /** A file name for a snapshot when no session is at hand (after a fault). */
  private nameOf(setup: Setup, step: number): string {
    const prefix = setup.family === 'hierarchical' ? 'pixelvae-hier-' : 'pixelvae-';
    return `${prefix}${setup.preset}-${setup.sizes.imageSize ?? 28}px-step${step}.safetensors`;
  }

  async checkpoint(): Promise<CheckpointFile> {
    const s = this.session;
    if (s && !this.faulted && !this.gpu().isLost) {
      return this.exclusive(async () => {
        const snap = await this.snapshot(s);
        // A download is never a diverged state (no loader would open it).
        const bad = checkpointNonFinite(decodeCheckpoint(snap.bytes, 'snapshot', { allowNonFinite: true }));
        if (bad.length > 0) {
          const names = bad.slice(0, 3).map((b) => `'${b.key}'`).join(', ') + (bad.length > 3 ? ` and ${bad.length - 3} more` : '');
          const good = this.lastGood ? ` Its last good state is step ${this.lastGood.step}: train on to restore it, or open an earlier checkpoint.` : '';
          throw new Error(`The current model holds NaN or Inf values (in ${names}): training has diverged, so it was not downloaded.${good}`);
        }
        return this.fileOf(snap.bytes, s.fileName(snap.step), snap.step);
      });
    }
    const good = this.lastGood ?? (await loadRun().catch(() => null));
    if (!good) throw new Error('There is no saved state to download.');
    return this.fileOf(good.bytes, this.nameOf(good.setup, good.step), good.step);
  }

  /** Builds a session from checkpoint bytes and makes it current (only once everything succeeded). */
  private async openSnapshot(bytes: Uint8Array, setupHint: Setup | null, history: History | null, name = 'checkpoint', decoded?: Checkpoint): Promise<{ note?: string }> {
    // The caller may have decoded (and so checked) these bytes already: a zoo model widens millions of halves.
    const checkpoint = decoded ?? decodeCheckpoint(bytes, name);
    const driver = this.driverOf(checkpoint, name);
    const hint = setupHint && setupHint.family === driver.id ? setupHint : null;
    const { session, note } = await driver.open(checkpoint, hint, history);
    this.adopt(session);
    // decodeCheckpoint above refused NaN/Inf, so these bytes are a finite state.
    this.lastGood = { setup: session.setup, step: session.step, bytes, history: session.history };
    return { note };
  }

  private restored(note?: string): Restored {
    const s = this.need();
    return { summary: s.summary, data: s.data, step: s.step, history: s.history, note };
  }

  async openCheckpoint(bytes: Uint8Array, name: string, options: { replace: boolean } = { replace: false }): Promise<Restored> {
    if (this.training) throw new Error('Pause training before opening a checkpoint.');
    if (bytes.byteLength === 0) throw new CheckpointError(`${name} is empty (0 bytes); it is not a checkpoint.`);
    // Validate the file completely before touching the current model.
    const checkpoint = decodeCheckpoint(bytes, name);
    const driver = this.driverOf(checkpoint, name);
    const what = driver.describeCheckpoint(checkpoint);
    const current = this.session;
    if (current && !options.replace) {
      const keep = 'Nothing was changed. Download the current model first if you want to keep it, then open the file anyway.';
      if (current.family !== driver.id) {
        throw new CheckpointError(
          `${name} is ${what} (${familyLabel(driver.id)}), but the current model is ${this.driver(current.family).describeSession(current)} (${familyLabel(current.family)}) at step ${current.step}. ${keep}`,
        );
      }
      if (current.step > 0 && !driver.sameModel(checkpoint, current)) {
        throw new CheckpointError(`${name} is ${what}, but the current model is ${driver.describeSession(current)} trained for ${current.step} steps. ${keep}`);
      }
    }
    const previous = current ? `${current.setup.preset}` : null;
    const previousFamily = current?.family;
    // A trained current model stays restorable (an earlier run in the autosave) [trust-app].
    await this.keepCurrent();
    const { note } = await this.exclusive(() => this.openSnapshot(bytes, null, null, name, checkpoint));
    this.runId = newRunId();
    const s = this.need();
    // Saved behind the opening (the queue keeps it before any later work): the file itself is already
    // safe, and a large model's serialisation would otherwise hold up its first view.
    void this.exclusive(() => this.autosave()).catch(() => undefined);
    const switched =
      previous && (previous !== s.setup.preset || previousFamily !== s.family) ? `Switched from ${previous} to ${s.setup.preset}, the checkpoint’s preset.` : undefined;
    return this.restored([switched, note].filter(Boolean).join(' ') || undefined);
  }

  async autosaved(): Promise<AutosaveInfo | null> {
    const run = await loadRun().catch(() => null);
    return run ? { id: runId(run), setup: run.setup, step: run.step, savedAt: run.savedAt } : null;
  }

  async restoreAutosave(): Promise<Restored | null> {
    const run = await loadRun();
    if (!run) return null;
    let note: string | undefined;
    try {
      note = (await this.exclusive(() => this.openSnapshot(run.bytes, run.setup, run.history, 'autosave'))).note;
    } catch (error) {
      throw new Error(`The run saved in this browser could not be restored (${message(error)}); it was left in place.`);
    }
    this.runId = runId(run);
    return this.restored(note);
  }

  async clearAutosave(): Promise<void> {
    await clearRun();
  }

  stats(): { buffers: number; bytes: number; pipelines: number; dispatches: number } {
    const st = this.gpu().stats();
    return { buffers: st.liveBuffers, bytes: st.liveBytes, pipelines: st.pipelines, dispatches: st.dispatches };
  }

  async debugFault(kind: 'nan' | 'device-lost'): Promise<void> {
    if (kind === 'device-lost') {
      this.gpu().device.destroy();
      return;
    }
    const s = this.need();
    await this.exclusive(async () => {
      const t = s.firstParameter();
      this.gpu().write(t.gpuBuffer, new Float32Array(t.size).fill(Number.NaN), t.byteOffset);
    });
  }
}
