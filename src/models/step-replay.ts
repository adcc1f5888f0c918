// Replaying a training step from its recording. A step records the same GPU commands every time, up
// to a few per-step values (the step number in the random offsets, Adam's step size, the KL weights);
// recording it through the engine costs the host far more than issuing the commands (ops, the tape,
// bind-group lookups: docs/performance.md). So after three recorded steps agree, later steps issue
// the recorded commands again with those values patched in. That is the same computation only while
// every buffer the commands touch holds what it held when recorded, so a plan is used only if:
// - the buffers that were live at the end of the recording are still owned by the same tensors (the
//   pool's ownership count; a restored or rebuilt model, optimizer or data set changes it);
// - the buffers that were scratch (idle at the end) are reserved in the pool, so nothing else is given
//   them between steps;
// - the step, the optimizer's step count and the family's phase (what changes the step's shape, e.g.
//   the KL term switched on) are the ones the plan expects;
// - every `checkEvery` steps a step is recorded again and must equal the plan's prediction exactly.
import type { BufferPool } from '../gpu/pool';
import type { GpuContext, RecordedCommand } from '../gpu/context';

/** The per-step values a step's kernels receive, each as the u32 word its params hold. */
export type StepValues = ReadonlyMap<string, number>;

/** What a trainer knows about the step it is about to take. */
export interface StepState {
  step: number;
  /** The optimizer's step count before this step. */
  t: number;
  /** What decides the step's commands besides the values (e.g. whether the KL term is recorded). */
  phase: string;
  values: StepValues;
  /** The buffer the step's prologue writes (the batch's indices): written anew, not replayed. */
  fed: GPUBuffer;
}

interface Recording {
  state: StepState;
  commands: RecordedCommand[];
}

interface Patch {
  command: number;
  word: number;
  value: string;
}

interface Plan {
  commands: RecordedCommand[];
  /** The commands after the prologue's write of the fed buffer (what replay issues). */
  body: RecordedCommand[];
  patches: Patch[];
  phase: string;
  fed: GPUBuffer;
  nextStep: number;
  nextT: number;
  /** Buffers live at the end of the recording, with their owner (BufferPool.ownership). */
  owners: Map<GPUBuffer, number>;
  /** Buffers idle at the end of the recording: the step's scratch, reserved in the pool. */
  scratch: GPUBuffer[];
  reserved: boolean;
  sinceCheck: number;
}

export interface ReplayStats {
  /** Steps issued from a plan. */
  replayed: number;
  /** Steps recorded through the engine (before a plan, at checks, after an invalidation). */
  recorded: number;
  /** Plans made. */
  plans: number;
  /** Checks whose recording differed from the plan (the plan was dropped). */
  failedChecks: number;
  /** Why the last attempt to make a plan failed, or null. */
  lastRefusal: string | null;
}

const bufferOf = (c: RecordedCommand): GPUBuffer[] => {
  switch (c.kind) {
    case 'dispatch':
      return [...c.buffers];
    case 'copy':
      return [c.src, c.dst];
    case 'clear':
    case 'write':
      return [c.buffer];
  }
};

/**
 * Why two recordings are not the same commands up to params (null when they are): the same kernels,
 * bind groups, buffers, sizes and writes (a write to `fed` may differ in its bytes).
 */
export function structureDifference(a: readonly RecordedCommand[], b: readonly RecordedCommand[], fed: GPUBuffer): string | null {
  if (a.length !== b.length) return `${a.length} vs ${b.length} commands`;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    if (x.kind !== y.kind) return `command ${i}: ${x.kind} vs ${y.kind}`;
    if (x.kind === 'dispatch' && y.kind === 'dispatch') {
      if (x.pipeline !== y.pipeline) return `command ${i}: another kernel (${x.pipeline.label} vs ${y.pipeline.label})`;
      const moved = Array.from({ length: Math.max(x.buffers.length, y.buffers.length) }, (_, k) => k).find((k) => x.buffers[k] !== y.buffers[k]) ?? -1;
      if (moved >= 0) return `command ${i} (${x.pipeline.label}): binding ${moved + 1} is another buffer`;
      if (x.bindGroup !== y.bindGroup) return `command ${i} (${x.pipeline.label}): another bind group`;
      if (x.workgroups.some((w, k) => w !== y.workgroups[k])) return `command ${i}: another grid`;
      if (x.params.length !== y.params.length) return `command ${i}: another params length`;
    } else if (x.kind === 'copy' && y.kind === 'copy') {
      if (x.src !== y.src || x.dst !== y.dst || x.srcOffset !== y.srcOffset || x.dstOffset !== y.dstOffset || x.bytes !== y.bytes) return `command ${i}: another copy`;
    } else if (x.kind === 'clear' && y.kind === 'clear') {
      if (x.buffer !== y.buffer || x.offset !== y.offset || x.bytes !== y.bytes) return `command ${i}: another clear`;
    } else if (x.kind === 'write' && y.kind === 'write') {
      if (x.buffer !== y.buffer || x.offset !== y.offset || x.data.length !== y.data.length) return `command ${i}: another write`;
      if (x.buffer !== fed && !x.data.every((v, k) => v === y.data[k])) return `command ${i}: a write of other bytes`;
    }
  }
  return null;
}

/**
 * The patches that make recording `r[0]`'s params into each other recording's: a params word becomes
 * a per-step value where it equals that value in every recording; a word that changes and matches
 * no value refuses the plan (returns a reason). A word equal to a value that stays the same across
 * the recordings is patched too: the value may change later (a step size converging in f32).
 */
export function findPatches(r: readonly Recording[]): Patch[] | string {
  const patches: Patch[] = [];
  const names = [...r[0].state.values.keys()];
  // A value that changes across the recordings identifies its words beyond doubt: try those first.
  const varies = (n: string): boolean => r.some((x) => x.state.values.get(n) !== r[0].state.values.get(n));
  names.sort((a, b) => Number(varies(b)) - Number(varies(a)));
  const first = r[0].commands;
  for (let i = 0; i < first.length; i++) {
    const c = first[i];
    if (c.kind !== 'dispatch') continue;
    for (let w = 0; w < c.params.length; w++) {
      const words = r.map((x) => (x.commands[i] as RecordedCommand & { kind: 'dispatch' }).params[w]);
      const name = names.find((n) => r.every((x, k) => x.state.values.get(n) === words[k]));
      if (name !== undefined) patches.push({ command: i, word: w, value: name });
      else if (words.some((v) => v !== words[0])) return `command ${i} word ${w} changes from step to step (${words.join(', ')}) and is none of the step's values`;
    }
  }
  return patches;
}

export class StepReplay {
  private plan: Plan | null = null;
  private recent: Recording[] = [];
  readonly stats: ReplayStats = { replayed: 0, recorded: 0, plans: 0, failedChecks: 0, lastRefusal: null };

  constructor(
    private readonly gpu: GpuContext,
    /** Steps replayed between two checks. */
    readonly checkEvery = 50,
  ) {}

  private get pool(): BufferPool {
    return this.gpu.pool;
  }

  /** Whether the step described by `s` can be issued from the plan now (drops a plan that no longer holds). */
  canReplay(s: StepState): boolean {
    const p = this.plan;
    if (!p) return false;
    if (p.nextStep !== s.step || p.nextT !== s.t || p.phase !== s.phase || p.fed !== s.fed || !p.reserved) {
      this.invalidate();
      return false;
    }
    for (const [buffer, owner] of p.owners) {
      if (this.pool.ownership(buffer) !== owner) {
        this.invalidate();
        return false;
      }
    }
    return p.sinceCheck < this.checkEvery;
  }

  /** Issues the planned step: `prologue` writes the fed buffer, then the commands run with `s`'s values. */
  replay(s: StepState, prologue: () => void): void {
    const p = this.plan!;
    for (const { command, word, value } of p.patches) (p.commands[command] as RecordedCommand & { kind: 'dispatch' }).params[word] = s.values.get(value)!;
    prologue();
    this.gpu.replayCommands(p.body);
    p.nextStep += 1;
    p.nextT += 1;
    p.sinceCheck += 1;
    this.stats.replayed += 1;
  }

  /**
   * Records the step through the engine (`work`), then: checks it against the plan if there is one,
   * or tries to make a plan from it and the two steps before.
   */
  record(s: StepState, work: () => void): void {
    const p = this.plan;
    // The recording must be handed the same scratch buffers to match the plan.
    if (p) this.releaseScratch(p);
    const { commands, read } = this.gpu.captureCommands(work);
    this.stats.recorded += 1;
    const rec: Recording = { state: s, commands };
    if (read) {
      this.invalidate('the step read a buffer back');
      return;
    }
    if (p) {
      const why = this.difference(p, rec) ?? (this.pool.reserve(p.scratch) ? null : 'its scratch buffers are no longer idle');
      if (!why) {
        p.reserved = true;
        p.nextStep += 1;
        p.nextT += 1;
        p.sinceCheck = 0;
        return;
      }
      this.stats.failedChecks += 1;
      this.invalidate(`a check found the plan stale: ${why}`);
    }
    this.recent = [...this.recent.slice(-2), rec];
    if (this.recent.length === 3) this.makePlan();
  }

  /** Drops the plan and gives its scratch back to the pool (a model, optimizer or data change). */
  invalidate(reason: string | null = null): void {
    if (this.plan) this.releaseScratch(this.plan);
    this.plan = null;
    this.recent = [];
    if (reason) this.stats.lastRefusal = reason;
  }

  /**
   * Gives the plan's scratch back to the pool at once, after submitting what may still read it, so a
   * step recorded next is handed the same buffers instead of new ones.
   */
  private releaseScratch(p: Plan): void {
    if (!p.reserved) return;
    this.gpu.flush();
    this.pool.unreserve(p.scratch, true);
    p.reserved = false;
  }

  /** Why a recording differs from the plan's prediction for its step (null: it does not). */
  private difference(p: Plan, rec: Recording): string | null {
    if (p.nextStep !== rec.state.step || p.nextT !== rec.state.t || p.phase !== rec.state.phase) return 'another step, optimizer step or phase than planned';
    const why = structureDifference(p.commands, rec.commands, p.fed);
    if (why) return why;
    const patched = new Map<string, number>();
    for (const { command, word, value } of p.patches) patched.set(`${command}:${word}`, rec.state.values.get(value)!);
    for (let i = 0; i < rec.commands.length; i++) {
      const c = rec.commands[i];
      const planned = p.commands[i];
      if (c.kind !== 'dispatch' || planned.kind !== 'dispatch') continue;
      for (let w = 0; w < c.params.length; w++) {
        const want = patched.get(`${i}:${w}`) ?? planned.params[w];
        if (c.params[w] !== want) return `command ${i} (${c.pipeline.label}) word ${w}: ${c.params[w]}, planned ${want}`;
      }
    }
    return null;
  }

  private makePlan(): void {
    const r = this.recent;
    const refuse = (why: string): void => {
      this.stats.lastRefusal = why;
    };
    const last = r[2].state;
    if (r.some((x, k) => x.state.step !== r[0].state.step + k || x.state.t !== r[0].state.t + k)) return refuse('the recorded steps are not consecutive');
    if (r.some((x) => x.state.phase !== last.phase || x.state.fed !== last.fed)) return refuse('the step changed phase');
    for (const x of r.slice(0, 2)) {
      const why = structureDifference(x.commands, r[2].commands, last.fed);
      if (why) return refuse(`the steps record different commands (${why})`);
    }
    const head = r[2].commands[0];
    if (head?.kind !== 'write' || head.buffer !== last.fed) return refuse('the step does not begin by writing its batch');
    if (r[2].commands.some((c, i) => i > 0 && c.kind === 'write' && c.buffer === last.fed)) return refuse('the batch is written twice');
    const patches = findPatches(r);
    if (typeof patches === 'string') return refuse(patches);
    const owners = new Map<GPUBuffer, number>();
    const scratch = new Set<GPUBuffer>();
    for (const c of r[2].commands) {
      for (const b of bufferOf(c)) {
        const owner = this.pool.ownership(b);
        if (owner > 0) owners.set(b, owner);
        else scratch.add(b);
      }
    }
    // The params buffer and anything else the pool does not manage cannot be scratch.
    if (!this.pool.reserve(scratch)) return refuse('a scratch buffer of the step is not the pool\'s');
    // Params are patched in place at each replay: the plan owns copies.
    const commands = r[2].commands.map((c) => (c.kind === 'dispatch' ? { ...c, params: Uint32Array.from(c.params) } : c));
    this.plan = {
      commands,
      // The first command is the prologue's write (checked above): replay calls the prologue instead.
      body: commands.slice(1),
      patches,
      phase: last.phase,
      fed: last.fed,
      nextStep: last.step + 1,
      nextT: last.t + 1,
      owners,
      scratch: [...scratch],
      reserved: true,
      sinceCheck: 0,
    };
    this.recent = [];
    this.stats.plans += 1;
    this.stats.lastRefusal = null;
  }
}
