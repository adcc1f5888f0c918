// The UI's handle on the engine worker. The worker is created lazily, once per page.
import * as Comlink from 'comlink';
import type { EngineApi } from './api';

export type * from './api';

let remote: Comlink.Remote<EngineApi> | null = null;
let failure: Promise<never> | null = null;

/**
 * The engine API. `failed` rejects if the worker script itself cannot load or crashes (a syntax
 * error, a blocked module worker); comlink calls would otherwise wait forever.
 */
export function engineWorker(): { api: Comlink.Remote<EngineApi>; failed: Promise<never> } {
  if (!remote || !failure) {
    const worker = new Worker(new URL('./engine.worker.ts', import.meta.url), { type: 'module', name: 'pixelvae-engine' });
    failure = new Promise<never>((_, reject) => {
      worker.addEventListener('error', (event) => {
        reject(new Error(`The engine worker failed to start: ${event.message || 'unknown error'}`));
      });
    });
    failure.catch(() => undefined); // observed by callers that race it; avoid an unhandled rejection
    remote = Comlink.wrap<EngineApi>(worker);
  }
  return { api: remote, failed: failure };
}

/** The engine API (the worker starts on first use). */
export function engine(): Comlink.Remote<EngineApi> {
  return engineWorker().api;
}

/** Wraps a callback so the worker can call it (comlink proxy). */
export const callback = <T extends (...args: never[]) => unknown>(fn: T): T => Comlink.proxy(fn);

/** Marks typed arrays' buffers to be moved, not copied, to the worker. */
export const transfer = <T>(value: T, buffers: ArrayBuffer[]): T => Comlink.transfer(value, buffers);
