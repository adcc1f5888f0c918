// The contract between the UI and the engine worker. The UI imports only this file (types) and
// client.ts; it never imports src/engine. Everything here must survive structured cloning.

/** What the browser told us about its WebGPU adapter. */
export interface AdapterInfo {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** True for CPU implementations (SwiftShader, lavapipe): correct but slow. */
  isFallbackAdapter: boolean;
}

/** One small computation run through the engine on the GPU, as a smoke test of the whole stack. */
export interface OpCheck {
  /** The expression that was evaluated, in words the page can show. */
  expression: string;
  inputs: { a: number[]; b: number[] };
  /** Element-wise result read back from the GPU. */
  values: number[];
  /** Sum of `values`, reduced on the GPU. */
  total: number;
  /** The same computation in float64 on the CPU, to compare against. */
  expected: { values: number[]; total: number };
  /** Largest relative error between GPU and float64 over values and total. */
  maxRelativeError: number;
  /** True when maxRelativeError is within float32 tolerance. */
  matches: boolean;
  /** Wall time of the op, including pipeline creation and readback. */
  milliseconds: number;
}

export type ProbeResult =
  | { kind: 'ready'; adapter: AdapterInfo; op: OpCheck }
  /** navigator.gpu is missing, or it gave no adapter or device. */
  | { kind: 'unavailable'; reason: 'no-navigator-gpu' | 'no-adapter'; message: string }
  /** WebGPU exists but something failed while running the engine. */
  | { kind: 'error'; message: string };

/** The API the engine worker exposes through comlink. */
export interface EngineApi {
  /** Acquires the GPU (once), runs the smoke-test op and reports what happened. Never throws. */
  probe(): Promise<ProbeResult>;
}
