// Status of the engine worker and the WebGPU adapter, as the UI sees it.
import { create } from 'zustand';
import { engineWorker, type AdapterInfo, type OpCheck } from '../worker/client';

export type EngineStatus =
  | { phase: 'idle' }
  | { phase: 'probing' }
  | { phase: 'ready'; adapter: AdapterInfo; op: OpCheck }
  | { phase: 'unavailable'; reason: 'no-navigator-gpu' | 'no-adapter'; message: string }
  | { phase: 'error'; message: string };

interface EngineState {
  status: EngineStatus;
  /** Starts the worker (first call), acquires WebGPU there and runs the smoke-test op. */
  probe: () => Promise<void>;
}

export const useEngine = create<EngineState>()((set, get) => ({
  status: { phase: 'idle' },
  probe: async () => {
    if (get().status.phase === 'probing') return;
    set({ status: { phase: 'probing' } });
    try {
      const { api, failed } = engineWorker();
      const result = await Promise.race([api.probe(), failed]);
      if (result.kind === 'ready') set({ status: { phase: 'ready', adapter: result.adapter, op: result.op } });
      else if (result.kind === 'unavailable') set({ status: { phase: 'unavailable', reason: result.reason, message: result.message } });
      else set({ status: { phase: 'error', message: result.message } });
    } catch (error) {
      set({ status: { phase: 'error', message: error instanceof Error ? error.message : String(error) } });
    }
  },
}));
