// The autosave in IndexedDB: the current run (checkpoint bytes, setup, chart history) under one key,
// so a reload resumes where training was, plus a few earlier runs. A run is only ever overwritten by
// itself: when another run (a reset, a new build, an opened checkpoint) is saved as current, the
// stored one moves to the earlier runs first, so one click never destroys a trained model.
// Used from the worker (IndexedDB exists there).
import type { History, Setup } from './api';

export interface SavedRun {
  /** Identity of the run (a reset or a new build starts another); absent in autosaves older than it. */
  id?: string;
  setup: Setup;
  step: number;
  savedAt: number;
  bytes: Uint8Array;
  history: History;
}

/** An earlier run's description (no bytes). */
export interface EarlierRun {
  id: string;
  setup: Setup;
  step: number;
  savedAt: number;
}

const DB_NAME = 'pixelvae-lab';
const STORE = 'runs';
const KEY = 'current';
const EARLIER = 'earlier:';
/** Earlier runs kept besides the current one (the oldest goes first). */
export const MAX_EARLIER_RUNS = 3;

function open(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => {
      if (!request.result.objectStoreNames.contains(STORE)) request.result.createObjectStore(STORE);
    };
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(new Error(`IndexedDB could not be opened: ${request.error?.message ?? 'unknown error'}`));
    request.onblocked = () => reject(new Error('IndexedDB is blocked by another tab of this app'));
  });
}

/** Runs `fn` in one transaction (all its requests commit together or not at all). */
async function transact<T>(mode: IDBTransactionMode, fn: (store: IDBObjectStore, done: (value: T) => void) => void): Promise<T> {
  const db = await open();
  try {
    return await new Promise<T>((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      let result: T;
      fn(tx.objectStore(STORE), (value) => {
        result = value;
      });
      tx.oncomplete = () => resolve(result);
      tx.onerror = () => reject(new Error(`IndexedDB: ${tx.error?.message ?? 'transaction failed'}`));
      tx.onabort = () => reject(new Error(`IndexedDB: ${tx.error?.message ?? 'transaction aborted (storage full?)'}`));
    });
  } finally {
    db.close();
  }
}

function isRun(value: unknown): value is SavedRun {
  return !!value && typeof value === 'object' && (value as SavedRun).bytes instanceof Uint8Array;
}

/** The id of a stored run (autosaves from before ids get one from their save time). */
export function runId(run: SavedRun): string {
  return run.id ?? `legacy-${run.savedAt}`;
}

/** Whether a stored run holds training worth keeping (a fresh initialisation does not). */
function worthKeeping(run: SavedRun): boolean {
  return run.step > 0;
}

/**
 * Saves `run` as the current run. When the stored current run is another one (another id) that was
 * trained, it becomes an earlier run (the oldest earlier run beyond MAX_EARLIER_RUNS is dropped);
 * when `run` was itself an earlier run, that entry is removed (it is current again).
 */
export async function saveRun(run: SavedRun): Promise<void> {
  await transact<void>('readwrite', (store, done) => {
    const get = store.get(KEY);
    get.onsuccess = () => {
      const stored: unknown = get.result;
      if (isRun(stored) && runId(stored) !== run.id && worthKeeping(stored)) {
        const id = runId(stored);
        store.put({ ...stored, id }, EARLIER + id);
      }
      if (run.id) store.delete(EARLIER + run.id);
      store.put(run, KEY);
      // Prune: keep the newest MAX_EARLIER_RUNS earlier runs.
      const all = store.getAll(IDBKeyRange.bound(EARLIER, `${EARLIER}\uffff`));
      const keys = store.getAllKeys(IDBKeyRange.bound(EARLIER, `${EARLIER}\uffff`));
      keys.onsuccess = () => {
        const entries = (all.result as SavedRun[]).map((r, i) => ({ key: keys.result[i], savedAt: r.savedAt })).filter((e) => e.key !== EARLIER + run.id);
        entries.sort((a, b) => b.savedAt - a.savedAt);
        for (const e of entries.slice(MAX_EARLIER_RUNS)) store.delete(e.key);
        done(undefined);
      };
    };
  });
}

export async function loadRun(): Promise<SavedRun | null> {
  return transact<SavedRun | null>('readonly', (store, done) => {
    const get = store.get(KEY);
    get.onsuccess = () => done(isRun(get.result) ? get.result : null);
  });
}

/** Earlier runs, newest first. */
export async function earlierRuns(): Promise<EarlierRun[]> {
  const runs = await transact<SavedRun[]>('readonly', (store, done) => {
    const all = store.getAll(IDBKeyRange.bound(EARLIER, `${EARLIER}\uffff`));
    all.onsuccess = () => done((all.result as unknown[]).filter(isRun));
  });
  return runs
    .filter((r): r is SavedRun & { id: string } => typeof r.id === 'string')
    .map((r) => ({ id: r.id, setup: r.setup, step: r.step, savedAt: r.savedAt }))
    .sort((a, b) => b.savedAt - a.savedAt);
}

export async function loadEarlierRun(id: string): Promise<SavedRun | null> {
  return transact<SavedRun | null>('readonly', (store, done) => {
    const get = store.get(EARLIER + id);
    get.onsuccess = () => done(isRun(get.result) ? get.result : null);
  });
}

/** Removes the current run only (earlier runs stay). */
export async function clearRun(): Promise<void> {
  await transact<void>('readwrite', (store, done) => {
    store.delete(KEY);
    done(undefined);
  });
}

/** A new run id (unique enough for one browser's handful of runs). */
export function newRunId(): string {
  return `${Date.now().toString(36)}-${Math.floor(Math.random() * 1e9).toString(36)}`;
}
