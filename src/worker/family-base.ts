// What the two model families (family-mnist.ts, family-hier.ts) share: a driver that builds sessions
// from a setup or a checkpoint, and a session whose data and trainer are made when first needed
// (a checkpoint opens without waiting for its training data). A family supplies its model, data,
// trainer and checkpoint format through the abstract members; exploring a model stays its own.
import type * as E from '../engine';
import type { Checkpoint } from '../io/checkpoint';
import type { ParamSet } from '../nn/params';
import type { DataInfo, FamilyId, History, ModelSummary, Setup } from './api';
import type { FamilyDriver, FamilySession, Progress } from './session';

export interface FamilyModel {
  readonly params: ParamSet;
  dispose(): void;
}

export interface FamilyTrainer {
  readonly step: number;
  resumeAt(step: number): void;
  prewarm(onProgress?: Progress): Promise<number>;
  trainStep(): void;
  dispose(): void;
}

/** A session's data and trainer, once made. */
export interface Prepared<D extends { info: DataInfo }, T extends FamilyTrainer> {
  data: D;
  trainer: T;
}

/** What a session knows before its data is loaded, and how to load it. */
export interface PendingData<P> {
  info: DataInfo;
  step: number;
  /** The checkpoint holds optimizer state, which only the trainer keeps: saving waits for it. */
  keepsOptimizer: boolean;
  prepare: () => Promise<P>;
}

/** The user-facing words of a family's lazy data. */
export interface LoadingWords {
  /** Thrown by what needs the data before it is ready. */
  notReady: string;
  /** Thrown when the session was disposed while its data was being made. */
  closed: string;
}

export function checkRun(setup: Setup, maxBatch: number): void {
  if (!Number.isInteger(setup.batchSize) || setup.batchSize < 1 || setup.batchSize > maxBatch) throw new Error(`batch size must be 1 to ${maxBatch} (got ${setup.batchSize})`);
  if (!(setup.lr > 0 && setup.lr < 1)) throw new Error(`learning rate must be in (0, 1) (got ${setup.lr})`);
}

/** The lazy-data half of a session: ready() makes the data and trainer once; the getters wait for nothing. */
export abstract class LazySession<M extends FamilyModel, D extends { info: DataInfo }, T extends FamilyTrainer> {
  history: History = { train: [], valid: [] };
  protected prepared: Prepared<D, T> | null;
  private preparing: Promise<Prepared<D, T>> | null = null;
  private disposed = false;

  constructor(
    public setup: Setup,
    readonly model: M,
    private readonly source: Prepared<D, T> | PendingData<Prepared<D, T>>,
    private readonly words: LoadingWords,
  ) {
    this.prepared = 'trainer' in source ? source : null;
  }

  /** The data and trainer, made once (again after a failure, so a failed download can be retried). */
  ready(): Promise<Prepared<D, T>> {
    if (this.prepared) return Promise.resolve(this.prepared);
    const source = this.source as PendingData<Prepared<D, T>>;
    this.preparing ??= source.prepare().then(
      (p) => {
        if (this.disposed) {
          p.trainer.dispose();
          throw new Error(this.words.closed);
        }
        this.prepared = p;
        return p;
      },
      (error: unknown) => {
        this.preparing = null;
        throw error;
      },
    );
    return this.preparing;
  }

  get trainer(): T {
    if (!this.prepared) throw new Error(this.words.notReady);
    return this.prepared.trainer;
  }

  protected get d(): D {
    if (!this.prepared) throw new Error(this.words.notReady);
    return this.prepared.data;
  }

  get data(): DataInfo {
    return this.prepared ? this.prepared.data.info : (this.source as PendingData<Prepared<D, T>>).info;
  }

  get step(): number {
    return this.prepared ? this.prepared.trainer.step : (this.source as PendingData<Prepared<D, T>>).step;
  }

  /**
   * Whether saving must wait for the data and trainer. Without them the model is the checkpoint's as
   * opened (nothing trains before the data is ready), unless the checkpoint's optimizer state must be
   * kept. (A check, not an async helper, so a save that needs no data does not yield first.)
   */
  protected saveNeedsTrainer(): boolean {
    return !this.prepared && (this.source as PendingData<Prepared<D, T>>).keepsOptimizer;
  }

  async prewarmTraining(onProgress: Progress): Promise<void> {
    await (await this.ready()).trainer.prewarm(onProgress);
  }

  trainStep(): void {
    // prewarmTraining (which waits for the data) runs before every training run.
    this.trainer.trainStep();
  }

  firstParameter(): E.Tensor {
    return this.model.params.entriesList()[0][1];
  }

  dispose(): void {
    this.disposed = true;
    this.prepared?.trainer.dispose();
    this.model.dispose();
  }
}

/** The driver half: everything but opening a checkpoint, whose data choice is each family's own. */
export abstract class LazyDriver<C extends { seed: number }, M extends FamilyModel, D extends { info: DataInfo }, T extends FamilyTrainer, S extends FamilySession & { readonly config: C }>
  implements Omit<FamilyDriver, 'open'>
{
  abstract readonly id: FamilyId;
  /** What a checkpoint's preset of this family starts with. */
  protected abstract readonly presetPrefix: string;
  protected abstract readonly maxBatch: number;

  protected abstract configOf(setup: Setup): C;
  protected abstract configFromCheckpoint(checkpoint: Checkpoint): C;
  protected abstract newModel(config: C): M;
  abstract summarize(setup: Setup, config: C, model: M): ModelSummary;
  /** The model in words (for refusals). */
  protected abstract words(config: C): string;
  /** The data a new model of `setup` trains on. */
  protected abstract dataFor(setup: Setup, config: C, onStatus?: (m: string) => void): Promise<D>;
  /** A fresh trainer on `data` (throws a readable error when the batch does not fit). */
  protected abstract newTrainer(setup: Setup, model: M, data: D): T;
  /** The checkpoint's parameters into `model`, and its optimizer state and step into `trainer` when given. */
  protected abstract loadCheckpoint(model: M, checkpoint: Checkpoint, trainer?: T): void;
  protected abstract newSession(setup: Setup, config: C, model: M, source: Prepared<D, T> | PendingData<Prepared<D, T>>): S;

  check(setup: Setup): void {
    this.configOf(setup);
    checkRun(setup, this.maxBatch);
  }

  describe(setup: Setup): ModelSummary {
    const config = this.configOf(setup);
    const model = this.newModel(config);
    try {
      return this.summarize(setup, config, model);
    } finally {
      model.dispose();
    }
  }

  async create(setup: Setup, onStatus?: (m: string) => void): Promise<FamilySession> {
    const config = this.configOf(setup);
    checkRun(setup, this.maxBatch);
    const data = await this.dataFor(setup, config, onStatus);
    onStatus?.('Building the model…');
    return this.build(setup, config, data, null);
  }

  owns(checkpoint: Checkpoint): boolean {
    return checkpoint.config.preset.startsWith(this.presetPrefix);
  }

  describeCheckpoint(checkpoint: Checkpoint): string {
    return this.words(this.configFromCheckpoint(checkpoint));
  }

  describeSession(session: FamilySession): string {
    return this.words((session as S).config);
  }

  sameModel(checkpoint: Checkpoint, session: FamilySession): boolean {
    const config = this.configFromCheckpoint(checkpoint);
    return JSON.stringify({ ...config, seed: 0 }) === JSON.stringify({ ...(session as S).config, seed: 0 });
  }

  /** The trainer on `data`, with the checkpoint's optimizer state and step when one is given (the model already holds its parameters when `loaded`). */
  private trainerOn(setup: Setup, model: M, data: D, checkpoint: Checkpoint | null, loaded: boolean): T {
    const trainer = this.newTrainer(setup, model, data);
    try {
      if (checkpoint && (!loaded || checkpoint.optim.size > 0)) this.loadCheckpoint(model, checkpoint, trainer);
      else if (checkpoint) trainer.resumeAt(checkpoint.config.step);
    } catch (error) {
      trainer.dispose();
      throw error;
    }
    return trainer;
  }

  /** A new model (from the checkpoint when given) with its trainer on loaded data. */
  protected build(setup: Setup, config: C, data: D, checkpoint: Checkpoint | null): S {
    const model = this.newModel(config);
    try {
      const trainer = this.trainerOn(setup, model, data, checkpoint, false);
      return this.newSession(setup, config, model, { data, trainer });
    } catch (error) {
      model.dispose();
      throw error;
    }
  }

  /**
   * A session on a checkpoint whose data is not loaded yet: the model and its samples need none, so
   * opening does not wait for it. `load` and the trainer run before the first thing that needs them.
   */
  protected buildPending(setup: Setup, config: C, checkpoint: Checkpoint, info: DataInfo, load: () => Promise<D>): S {
    const model = this.newModel(config);
    try {
      this.loadCheckpoint(model, checkpoint);
      const pending: PendingData<Prepared<D, T>> = {
        info,
        step: checkpoint.config.step,
        keepsOptimizer: checkpoint.optim.size > 0,
        prepare: async () => {
          const data = await load();
          return { data, trainer: this.trainerOn(setup, model, data, checkpoint, true) };
        },
      };
      return this.newSession(setup, config, model, pending);
    } catch (error) {
      model.dispose();
      throw error;
    }
  }
}
