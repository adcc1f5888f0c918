// What every command of the `pixelvae` command line shares: starting the engine on Dawn's adapter,
// naming that adapter in results, and required flags.
import { GpuContext } from '../gpu/context';
import { acquireDevice } from '../gpu/device';
import { nodeGpu } from '../gpu/node';
import * as E from '../engine';
import { adapterKey, chooseConvVariants } from '../engine/ops/conv-variants';
import { fileStore } from '../engine/ops/conv-variants-node';
import { UsageError, type Parsed } from './args';

export async function startEngine(): Promise<GpuContext> {
  const gpu = new GpuContext(await acquireDevice(nodeGpu()));
  E.initEngine(gpu);
  const a = gpu.adapter;
  process.stderr.write(`adapter: ${a.vendor} ${a.architecture} ${a.description}${a.isFallbackAdapter ? ' (CPU fallback: correct but slow)' : ''}\n`);
  await selectConvKernels(gpu);
  return gpu;
}

/**
 * The conv kernels for this adapter: the choice remembered in the OS cache dir, else on a GPU a
 * short timing of every variant (then remembered). A CPU adapter without a remembered choice keeps
 * the CPU-shaped kernels untimed (both CPU adapters we have chose them: docs/performance.md), so
 * tests and one-off commands there do not pay for the timing; `npm run bench -- --conv-variants`
 * measures and remembers a choice for any adapter.
 */
export async function selectConvKernels(gpu: GpuContext): Promise<void> {
  const store = fileStore();
  const known = store.get(adapterKey(gpu.adapter)) !== null;
  if (gpu.adapter.isFallbackAdapter && !known) return;
  if (!known) process.stderr.write('conv kernels: timing the variants on this adapter (once)…\n');
  const report = await chooseConvVariants({ store });
  process.stderr.write(`conv kernels: forward ${report.choice.forward}, input gradient ${report.choice.backwardInput} (${report.source})\n`);
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
