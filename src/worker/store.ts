// The autosave: the current run's checkpoint bytes, its setup and its chart history in IndexedDB,
// under one key, so a reload resumes where training was. Used from the worker (IndexedDB exists there).
import type { History, Setup } from './api';

export interface SavedRun {
  setup: Setup;
  step: number;
  savedAt: number;
  bytes: Uint8Array;
  history: History;
}

const DB_NAME = 'pixelvae-lab';
const STORE = 'runs';
const KEY = 'current';

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

async function withStore<T>(mode: IDBTransactionMode, fn: (store: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  const db = await open();
  try {
    return await new Promise<T>((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const request = fn(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(request.result);
      tx.onerror = () => reject(new Error(`IndexedDB: ${tx.error?.message ?? 'transaction failed'}`));
      tx.onabort = () => reject(new Error(`IndexedDB: ${tx.error?.message ?? 'transaction aborted (storage full?)'}`));
    });
  } finally {
    db.close();
  }
}

export async function saveRun(run: SavedRun): Promise<void> {
  await withStore('readwrite', (s) => s.put(run, KEY));
}

export async function loadRun(): Promise<SavedRun | null> {
  const run = await withStore<SavedRun | undefined>('readonly', (s) => s.get(KEY) as IDBRequest<SavedRun | undefined>);
  return run && run.bytes instanceof Uint8Array ? run : null;
}

export async function clearRun(): Promise<void> {
  await withStore('readwrite', (s) => s.delete(KEY));
}
