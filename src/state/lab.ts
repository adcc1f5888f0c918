// The lab's state as the UI sees it: the setup being edited (mirrored in the URL), the model the
// worker holds, training progress and chart history, and the messages shown to the user. Every GPU
// job goes through the worker; nothing here blocks the main thread.
import { create } from 'zustand';
import {
  callback,
  engine,
  transfer,
  type AdapterInfo,
  type Calibration,
  type ColourFilesInfo,
  type DataInfo,
  type Description,
  type EarlierRunInfo,
  type FamilyId,
  type FamilyInfo,
  type History,
  type ModelSummary,
  type Restored,
  type Setup,
  type TrainEvent,
  type TrainOutcome,
} from '../worker/client';
import { loadCalibration, saveCalibration, stepSecondsOf } from './estimate';
import { StepRate } from './rate';
import { DEFAULT_RUN, defaultSizes, readUrl, sameSetup, writeUrl } from './url';

export interface Notice {
  id: number;
  kind: 'error' | 'warn' | 'info';
  title: string;
  message?: string;
  action?: { label: string; run: () => void };
}

export interface Progress {
  what: string;
  done: number;
  total: number;
}

export type Phase = 'starting' | 'loading' | 'ready' | 'training' | 'faulted';

interface LabState {
  phase: Phase;
  /** What the worker is doing right now, in words (loading data, compiling shaders…). */
  status: string;
  compile: Progress | null;
  families: FamilyInfo[];
  draft: Setup | null;
  description: Description | null;
  model: ModelSummary | null;
  data: DataInfo | null;
  step: number;
  targetSteps: number;
  /** Measured steps per second (0 until measured) and the time to the target, s (estimated: from the calibration, before any step is timed). */
  rate: { stepsPerSecond: number; eta: number | null; estimated?: boolean };
  history: History;
  savedStep: number | null;
  notices: Notice[];
  sampleSeed: number;
  /** Bumped whenever the model changes (panels clear stale results). */
  modelVersion: number;
  fallbackAdapter: boolean;
  /** The user's own colour images, once loaded and checked by the worker. */
  colourFiles: ColourFilesInfo | null;
  colourBusy: string | null;
  colourError: string | null;
  /** The adapter's measured speed (remembered in this browser per adapter), for time estimates before a build. */
  calibration: Calibration | null;
  calibrating: boolean;
  /** Trained runs kept in this browser besides the current one (newest first). */
  earlier: EarlierRunInfo[];
  /** The last setup edited for each family, so switching families and back changes nothing. */
  drafts: Partial<Record<FamilyId, Setup>>;

  init: (adapter: AdapterInfo) => Promise<void>;
  setDraft: (patch: Partial<Setup>) => void;
  setSizes: (patch: Record<string, number>) => void;
  setTargetSteps: (steps: number) => void;
  setSampleSeed: (seed: number) => void;
  /** Sends the user's files (images, zips, CIFAR-10 batches) to the worker as the colour data set. */
  loadColourFiles: (files: File[]) => Promise<void>;
  build: () => Promise<void>;
  train: () => Promise<void>;
  pause: () => Promise<void>;
  reset: () => Promise<void>;
  /** Makes an earlier run (kept by a reset, a build or an opened file) current again. */
  restoreEarlier: (id: string) => Promise<void>;
  refreshEarlier: () => Promise<void>;
  /** Measures the adapter's speed again (the estimate on the setup panel uses it). */
  calibrate: () => Promise<void>;
  openCheckpoint: (file: File, replace?: boolean) => Promise<void>;
  downloadCheckpoint: () => Promise<void>;
  downloadConfig: () => Promise<void>;
  notify: (notice: Omit<Notice, 'id'>) => void;
  reportError: (title: string, error: unknown) => void;
  dismiss: (id: number) => void;
}

let nextNotice = 1;
/** The adapter the calibration belongs to (set by init). */
let currentAdapter: AdapterInfo | null = null;
let describeTimer: ReturnType<typeof setTimeout> | null = null;
let describeSeq = 0;

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function isDeviceLost(error: unknown): boolean {
  const e = error as { name?: string; message?: string };
  return e?.name === 'DeviceLostError' || /device was lost|device was closed/i.test(e?.message ?? '');
}

function save(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export const useLab = create<LabState>()((set, get) => {
  const syncUrl = (): void => {
    const { draft, sampleSeed, targetSteps } = get();
    if (draft) writeUrl(draft, { sampleSeed, steps: targetSteps });
  };

  const describeDraft = (): void => {
    if (describeTimer) clearTimeout(describeTimer);
    const seq = ++describeSeq;
    describeTimer = setTimeout(async () => {
      const draft = get().draft;
      if (!draft) return;
      try {
        const description = await engine().describe(draft);
        if (seq === describeSeq) set({ description });
      } catch (error) {
        if (seq === describeSeq) set({ description: { ok: false, message: errorText(error) } });
      }
    }, 150);
  };

  /** A new current model: its setup becomes the draft; notices about the previous model are dropped (they no longer apply). */
  const adopt = (r: { summary: ModelSummary; data: DataInfo }, history: History, step: number): void => {
    set((s) => ({
      model: r.summary,
      data: r.data,
      draft: r.summary.setup,
      drafts: { ...s.drafts, [r.summary.setup.family]: r.summary.setup },
      notices: [],
      description: { ok: true, summary: r.summary },
      history,
      step,
      targetSteps: Math.max(s.targetSteps, step),
      modelVersion: s.modelVersion + 1,
      rate: { stepsPerSecond: 0, eta: null },
    }));
    syncUrl();
    void get().refreshEarlier();
  };

  /** The notice after a reset, a build or an opened file replaced a trained model: it stays restorable. */
  const keptNotice = (kept: EarlierRunInfo | null, what: string): void => {
    if (!kept) return;
    get().notify({
      kind: 'info',
      title: `${what}. Your previous run (${kept.setup.preset}, step ${kept.step}) is kept in this browser`,
      message: 'It is listed under Checkpoint, Earlier runs, and can be restored at any time.',
      action: { label: what.startsWith('Reset') ? 'Undo reset' : 'Restore previous run', run: () => void get().restoreEarlier(kept.id) },
    });
  };

  const faulted = (message: string, savedStep: number | null): void => {
    set({ phase: 'faulted', status: 'GPU device lost' });
    get().notify({
      kind: 'error',
      title: 'The GPU device was lost',
      message: `${message}${savedStep !== null ? ` The last saved state (step ${savedStep}) is kept in this browser and can still be downloaded; reloading the page resumes from it.` : ''}`,
      action: { label: 'Reload the page', run: () => window.location.reload() },
    });
  };

  return {
    phase: 'starting',
    status: 'Starting…',
    compile: null,
    families: [],
    draft: null,
    description: null,
    model: null,
    data: null,
    step: 0,
    targetSteps: 500,
    rate: { stepsPerSecond: 0, eta: null },
    history: { train: [], valid: [] },
    savedStep: null,
    notices: [],
    sampleSeed: 1,
    modelVersion: 0,
    fallbackAdapter: false,
    colourFiles: null,
    colourBusy: null,
    colourError: null,
    calibration: null,
    calibrating: false,
    earlier: [],
    drafts: {},

    notify: (notice) => set((s) => ({ notices: [...s.notices.filter((n) => n.title !== notice.title), { ...notice, id: nextNotice++ }] })),
    dismiss: (id) => set((s) => ({ notices: s.notices.filter((n) => n.id !== id) })),
    reportError: (title, error) => {
      if (isDeviceLost(error)) faulted(errorText(error), get().savedStep);
      else get().notify({ kind: 'error', title, message: errorText(error) });
    },

    init: async (adapter) => {
      const api = engine();
      currentAdapter = adapter;
      set({ phase: 'loading', status: 'Reading the model registry…', fallbackAdapter: adapter.isFallbackAdapter });
      const families = await api.families();
      const url = readUrl(families, defaultSizes(families, adapter.isFallbackAdapter));
      set({ families, draft: url.setup, drafts: { [url.setup.family]: url.setup }, sampleSeed: url.sampleSeed, targetSteps: url.steps ?? (adapter.isFallbackAdapter ? 50 : 2000) });
      describeDraft();
      // The adapter's speed, for time estimates before a build: measured once per adapter, remembered.
      const remembered = loadCalibration(adapter);
      if (remembered) {
        await api.useConvVariants(remembered.convVariants.choice);
        set({ calibration: remembered });
      } else {
        set({ status: 'Measuring this adapter’s speed (once)…' });
        await get().calibrate();
      }
      let later: Omit<Notice, 'id'> | null = null;
      try {
        const saved = await api.autosaved();
        if (saved && (!url.explicit || sameSetup(saved.setup, url.setup))) {
          set({ status: `Restoring your saved run (step ${saved.step})…` });
          const restored = await api.restoreAutosave();
          if (restored) {
            adopt(restored, restored.history, restored.step);
            set({ savedStep: restored.step, phase: 'ready', status: 'Ready' });
            get().notify({ kind: 'info', title: `Resumed your saved run at step ${restored.step}`, message: 'Training state is saved in this browser as it goes.' });
            return;
          }
        } else if (saved) {
          later = {
            kind: 'info',
            title: `A saved run exists in this browser (${saved.setup.preset}, step ${saved.step})`,
            message: 'The link asked for another setup, so it was not restored; it is kept as an earlier run (Checkpoint panel).',
            action: { label: 'Restore it', run: () => void get().restoreEarlier(saved.id) },
          };
        }
      } catch (error) {
        later = { kind: 'warn', title: 'The saved run could not be restored', message: errorText(error) };
      }
      await get().build();
      if (later) get().notify(later);
    },

    setDraft: (patch) => {
      const draft = get().draft;
      if (!draft) return;
      let next = { ...draft, ...patch };
      const families = get().families;
      if (patch.family && patch.family !== draft.family) {
        // Another family: the setup last edited there (so switching there and back changes nothing),
        // else the built model's when it is of that family, else the family's defaults.
        const family = families.find((f) => f.id === patch.family);
        const remembered = get().drafts[patch.family] ?? (get().model?.setup.family === patch.family ? get().model!.setup : undefined);
        if (remembered) {
          next = { ...remembered };
          if (next.family === 'hierarchical' && next.data === 'files' && !get().colourFiles) next.data = 'demo';
        } else if (family) {
          const preset = family.presets.find((p) => p.id === family.defaultPreset) ?? family.presets[0];
          const sizes = family.id === 'mnist' ? defaultSizes(families, get().fallbackAdapter) : null;
          next = {
            ...next,
            preset: preset.id,
            sizes: { ...(sizes ?? preset.defaults) },
            batchSize: preset.run?.batchSize ?? DEFAULT_RUN.batchSize,
            lr: preset.run?.lr ?? DEFAULT_RUN.lr,
            data: family.id === 'hierarchical' ? (get().colourFiles ? 'files' : 'demo') : undefined,
          };
        }
      } else if (patch.preset && patch.preset !== draft.preset) {
        const preset = families.find((f) => f.id === draft.family)?.presets.find((p) => p.id === patch.preset);
        // Colour presets are size sets of their own; MNIST presets share the sizes being edited.
        if (draft.family === 'hierarchical' && preset) next = { ...next, sizes: { ...preset.defaults }, batchSize: preset.run?.batchSize ?? next.batchSize, lr: preset.run?.lr ?? next.lr };
        else next = { ...next, sizes: { ...draft.sizes } };
      }
      set((s) => ({ draft: next, drafts: { ...s.drafts, [draft.family]: patch.family && patch.family !== draft.family ? draft : next, [next.family]: next } }));
      syncUrl();
      describeDraft();
    },
    setSizes: (patch) => {
      const draft = get().draft;
      if (!draft) return;
      const next = { ...draft, sizes: { ...draft.sizes, ...patch } };
      set((s) => ({ draft: next, drafts: { ...s.drafts, [next.family]: next } }));
      syncUrl();
      describeDraft();
    },
    setTargetSteps: (steps) => {
      set({ targetSteps: Math.max(1, Math.round(steps)) });
      syncUrl();
    },
    setSampleSeed: (seed) => {
      set({ sampleSeed: Math.round(seed) });
      syncUrl();
    },

    loadColourFiles: async (files) => {
      if (files.length === 0) return;
      const size = get().draft?.sizes.imageSize ?? 32;
      set({ colourBusy: `Reading ${files.length} file${files.length > 1 ? 's' : ''}…`, colourError: null });
      try {
        const payload = await Promise.all(files.map(async (f) => ({ name: (f as File & { webkitRelativePath?: string }).webkitRelativePath || f.name, type: f.type, bytes: await f.arrayBuffer() })));
        const info = await engine().loadColourFiles(
          transfer(payload, payload.map((p) => p.bytes)),
          size,
          callback((message: string) => set({ colourBusy: message })),
        );
        set({ colourFiles: info, colourBusy: null });
        get().setDraft({ data: 'files' });
      } catch (error) {
        set({ colourBusy: null, colourError: errorText(error) });
      }
    },

    build: async () => {
      const draft = get().draft;
      if (!draft || get().phase === 'training') return;
      set({ phase: 'loading', status: 'Building the model…' });
      // Status messages from the worker arrive asynchronously: ignore any that land after the build ended.
      let building = true;
      try {
        const result = await engine().create(
          draft,
          callback((message: string) => {
            if (building) set({ status: message });
          }),
        );
        building = false;
        adopt(result, { train: [], valid: [] }, 0);
        set({ phase: 'ready', status: `Ready (data loaded in ${(result.data.loadMs / 1000).toFixed(1)} s)`, savedStep: null });
        keptNotice(result.kept, 'Built the new model');
      } catch (error) {
        building = false;
        // The page stays usable (phase ready even without a model) so the setup can be fixed and built again.
        const model = get().model;
        set({ phase: 'ready', status: model ? `The new model was not built; ${model.setup.preset} is still loaded` : 'The model could not be built: change the setup and build again' });
        get().reportError('The model could not be built', error);
      }
    },

    train: async () => {
      const s = get();
      if (!s.model || s.phase !== 'ready') return;
      let target = s.targetSteps;
      if (target <= s.step) {
        target = s.step + Math.max(1, s.targetSteps);
        set({ targetSteps: target });
        syncUrl();
      }
      const estimate = stepSecondsOf(s.model, s.model.setup.batchSize, s.calibration);
      const rate = new StepRate(s.step, estimate);
      set({ phase: 'training', status: 'Starting…', compile: null, rate: rate.initial(target) });
      // Events are applied in batches, at most five times a second, so the main thread does one small
      // render per batch however fast the worker reports (compile progress comes dozens at a time).
      let pending: TrainEvent[] = [];
      let timer: ReturnType<typeof setTimeout> | null = null;
      const apply = (): void => {
        timer = null;
        const events = pending;
        pending = [];
        const st = get();
        const patch: Partial<LabState> = {};
        let train = st.history.train;
        let valid = st.history.valid;
        for (const event of events) {
          switch (event.kind) {
            case 'status':
              patch.status = event.message;
              break;
            case 'compile':
              patch.compile = { what: event.what, done: event.done, total: event.total };
              patch.status = `Compiling shaders (${event.what}) ${event.done}/${event.total}`;
              break;
            case 'metrics': {
              patch.step = event.step;
              patch.compile = null;
              patch.status = 'Training';
              patch.rate = rate.add(event.elapsedSeconds, event.step, event.untilStep);
              train = [...train, event.point];
              break;
            }
            case 'valid':
              valid = [...valid, event.point];
              break;
            case 'saved':
              patch.savedStep = event.step;
              break;
          }
        }
        if (train !== st.history.train || valid !== st.history.valid) patch.history = { train, valid };
        set(patch);
      };
      const onEvent = (event: TrainEvent): void => {
        pending.push(event);
        timer ??= setTimeout(apply, 200);
      };
      let outcome: TrainOutcome;
      try {
        outcome = await engine().train({ untilStep: target, validEvery: 0, validLimit: 1000, autosaveSeconds: 20 }, callback(onEvent));
      } catch (error) {
        outcome = { kind: 'error', step: get().step, message: errorText(error) };
      }
      if (timer) clearTimeout(timer);
      apply();
      set({ compile: null, rate: { stepsPerSecond: get().rate.stepsPerSecond, eta: null, estimated: false } });
      void get().refreshEarlier();
      switch (outcome.kind) {
        case 'done':
        case 'paused':
          set({ phase: 'ready', step: outcome.step, status: outcome.kind === 'done' ? `Reached step ${outcome.step}` : `Paused at step ${outcome.step}` });
          break;
        case 'diverged':
          set((st) => ({
            phase: 'ready',
            step: outcome.restoredStep,
            status: `Restored step ${outcome.restoredStep}`,
            history: { train: st.history.train.filter((p) => p.step <= outcome.restoredStep), valid: st.history.valid.filter((p) => p.step <= outcome.restoredStep) },
            modelVersion: st.modelVersion + 1,
          }));
          get().notify({ kind: 'error', title: 'Training diverged', message: outcome.message });
          break;
        case 'device-lost':
          faulted(outcome.message, outcome.savedStep);
          break;
        case 'error':
          set({ phase: 'ready', status: 'Training stopped by an error' });
          get().reportError('Training stopped', new Error(outcome.message));
          break;
      }
    },

    pause: async () => {
      set({ status: 'Pausing…' });
      await engine().pause();
    },

    reset: async () => {
      if (get().phase !== 'ready') return;
      set({ phase: 'loading', status: 'Resetting…' });
      try {
        const result = await engine().reset();
        adopt(result, { train: [], valid: [] }, 0);
        set({ phase: 'ready', status: 'Reset to a fresh initialisation', savedStep: 0 });
        keptNotice(result.kept, 'Reset to a fresh initialisation');
      } catch (error) {
        set({ phase: 'ready', status: 'Reset failed; the model is unchanged' });
        get().reportError('Reset failed', error);
      }
    },

    restoreEarlier: async (id) => {
      if (get().phase !== 'ready') {
        get().notify({ kind: 'warn', title: 'Pause training before restoring another run' });
        return;
      }
      set({ phase: 'loading', status: 'Restoring the earlier run…' });
      try {
        const restored = await engine().restoreEarlier(id);
        adopt(restored, restored.history, restored.step);
        set({ phase: 'ready', status: `Restored ${restored.summary.setup.preset} at step ${restored.step}`, savedStep: restored.step });
        get().notify({ kind: 'info', title: `Restored your earlier run (${restored.summary.setup.preset}) at step ${restored.step}`, message: restored.note });
      } catch (error) {
        set({ phase: 'ready', status: 'The earlier run was not restored; the current model is unchanged' });
        get().reportError('The earlier run could not be restored', error);
      }
    },

    refreshEarlier: async () => {
      try {
        set({ earlier: await engine().earlierRuns() });
      } catch {
        // IndexedDB unavailable (private mode): nothing is kept, and the list stays empty.
      }
    },

    calibrate: async () => {
      set({ calibrating: true });
      try {
        const c = await engine().calibrate();
        if (currentAdapter) saveCalibration(currentAdapter, c);
        set({ calibration: c });
      } catch (error) {
        get().notify({ kind: 'warn', title: 'The adapter’s speed could not be measured', message: `${errorText(error)} Training-time estimates are not shown.` });
      } finally {
        set({ calibrating: false });
      }
    },

    openCheckpoint: async (file, replace = false) => {
      if (get().phase === 'training') {
        get().notify({ kind: 'warn', title: 'Pause training before opening a checkpoint' });
        return;
      }
      const previousPhase = get().phase;
      set({ phase: 'loading', status: `Opening ${file.name}…` });
      try {
        const bytes = new Uint8Array(await file.arrayBuffer());
        const restored: Restored = await engine().openCheckpoint(bytes, file.name, { replace });
        adopt(restored, restored.history, restored.step);
        set({ phase: 'ready', status: `Opened ${file.name} (step ${restored.step})`, savedStep: restored.step });
        get().notify({ kind: 'info', title: `Opened ${file.name} at step ${restored.step}`, message: restored.note });
      } catch (error) {
        set({ phase: previousPhase === 'faulted' ? 'faulted' : get().model ? 'ready' : 'loading', status: 'The checkpoint was not opened; the current model is unchanged' });
        const text = errorText(error);
        get().notify({
          kind: 'error',
          title: `${file.name} could not be opened`,
          message: text,
          action: /open the file anyway/.test(text) ? { label: 'Open it anyway', run: () => void get().openCheckpoint(file, true) } : undefined,
        });
      }
    },

    downloadCheckpoint: async () => {
      try {
        const file = await engine().checkpoint();
        save(new Blob([file.bytes as Uint8Array<ArrayBuffer>], { type: 'application/octet-stream' }), file.name);
      } catch (error) {
        get().reportError('The checkpoint could not be saved', error);
      }
    },
    downloadConfig: async () => {
      try {
        const file = await engine().checkpoint();
        save(new Blob([file.configJson], { type: 'application/json' }), file.name.replace(/\.safetensors$/, '.json'));
      } catch (error) {
        get().reportError('The config could not be saved', error);
      }
    },
  };
});
