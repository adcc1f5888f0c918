// What every command of the `pixelvae` command line shares: starting the engine on Dawn's adapter,
// naming that adapter in results, and required flags.
import { GpuContext } from '../gpu/context';
import { acquireDevice } from '../gpu/device';
import { nodeGpu } from '../gpu/node';
import * as E from '../engine';
import { UsageError, type Parsed } from './args';

export async function startEngine(): Promise<GpuContext> {
  const gpu = new GpuContext(await acquireDevice(nodeGpu()));
  E.initEngine(gpu);
  const a = gpu.adapter;
  process.stderr.write(`adapter: ${a.vendor} ${a.architecture} ${a.description}${a.isFallbackAdapter ? ' (CPU fallback: correct but slow)' : ''}\n`);
  return gpu;
}

export function adapterName(gpu: GpuContext): string {
  const a = gpu.adapter;
  return `${a.vendor} ${a.architecture || a.description}`.trim() + (a.isFallbackAdapter ? ' (fallback)' : '');
}

export function need<T>(flags: Parsed, name: string, command: string): T {
  const v = flags[name];
  if (v === undefined) throw new UsageError(`${command}: --${name} is required (see ${command} --help)`);
  return v as T;
}
