// Types of scripts/zoo-lib.mjs for the TypeScript tests that import it.
export function readHeader(bytes: Uint8Array, name?: string): { header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>; metadata: Record<string, string>; dataStart: number };
export function checkpointConfig(bytes: Uint8Array, name?: string): Record<string, unknown> & { preset: string; step: number };
export function float32ToHalf(x: number): number;
export function halfToFloat(h: number): number;
export function toZooFiles(bytes: Uint8Array, name?: string): {
  f16: Uint8Array;
  roundedF32: Uint8Array;
  config: Record<string, unknown> & { preset: string; step: number };
  tensors: number;
  values: number;
  dropped: number;
};
export function readPerImage(bytes: Uint8Array, name?: string): Float64Array;
export function pairedDifference(a: ArrayLike<number>, b: ArrayLike<number>): { value: number; stderr: number; n: number };
/** This machine as the zoo's records name it when the twin runs on the CPU. */
export function cpuHardware(): string;
