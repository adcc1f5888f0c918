// `npm run bench`: the benchmark cases of src/bench/cases.ts in Node, on whatever adapter Dawn finds;
// one JSON line per case.
import { GpuContext } from '../gpu/context';
import { acquireDevice } from '../gpu/device';
import { nodeGpu } from '../gpu/node';
import * as E from '../engine';
import { runBench, type BenchOptions } from '../bench/cases';
import { runHierSamplingBench, runSamplingBench, type HierSamplingBenchOptions, type SamplingBenchOptions } from '../bench/sampling';
import { HIER_PRESETS, type HierPreset } from '../models/hierarchical/config';
import { runStepBench, STEP_SETUPS, type StepBenchOptions, type StepSetup } from '../bench/steps';
import { chooseConvVariants } from '../engine/ops/conv-variants';
import { fileStore } from '../engine/ops/conv-variants-node';
import { selectConvKernels } from './common';

/** --sample: time sampling (src/bench/sampling.ts) instead of the kernel cases. */
let sampling: SamplingBenchOptions | null = null;
/** --sample-hier: time the hierarchical model's sampling instead. */
let hierSampling: HierSamplingBenchOptions | null = null;
/** --steps: time training steps of the app's setups: host ms, GPU wait, dispatches (src/bench/steps.ts). */
let stepBench: StepBenchOptions | null = null;
/** --conv-variants: time the conv kernel variants on this adapter, print the choice and remember it. */
let convVariantsOnly = false;

function stepSetups(list: string): StepSetup[] {
  const setups = list.split(',').filter(Boolean);
  for (const s of setups) {
    if (!(STEP_SETUPS as readonly string[]).includes(s)) {
      console.error(`bench: unknown setup ${s} (one of ${STEP_SETUPS.join(', ')})`);
      process.exit(2);
    }
  }
  return setups as StepSetup[];
}

function hierPresets(list: string): HierPreset[] {
  const presets = list.split(',').filter(Boolean);
  for (const p of presets) {
    if (!(HIER_PRESETS as readonly string[]).includes(p)) {
      console.error(`bench: unknown hierarchical preset ${p} (one of ${HIER_PRESETS.join(', ')})`);
      process.exit(2);
    }
  }
  return presets as HierPreset[];
}

function parseArgs(argv: string[]): BenchOptions {
  const args: BenchOptions = { quick: false, train: [], filter: null, reps: 0, forwardOnly: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick') args.quick = true;
    else if (a === '--filter') args.filter = new RegExp(argv[++i] ?? '');
    else if (a === '--reps') args.reps = Number(argv[++i]);
    else if (a === '--train') args.train = (argv[++i] ?? '').split(',').filter(Boolean);
    else if (a === '--forward-only') args.forwardOnly = true;
    else if (a === '--sample') sampling = { preset: 'gated-pixelvae-cond', batch: 64, size: 28, fullSize: 8, quick: false };
    else if (sampling && a === '--sample-preset') sampling.preset = argv[++i] as SamplingBenchOptions['preset'];
    else if (sampling && a === '--sample-batch') sampling.batch = Number(argv[++i]);
    else if (sampling && a === '--sample-full-size') sampling.fullSize = Number(argv[++i]);
    else if (a === '--sample-hier') hierSampling = { presets: hierPresets(argv[++i] ?? ''), batch: 16, fullTimed: ['tiny'] };
    else if (hierSampling && a === '--sample-hier-batch') hierSampling.batch = Number(argv[++i]);
    else if (hierSampling && a === '--sample-hier-full') hierSampling.fullTimed = hierPresets(argv[++i] ?? '');
    else if (a === '--steps') stepBench = { setups: stepSetups(argv[++i] ?? ''), batch: 32, steps: 0, replay: true };
    else if (stepBench && a === '--steps-batch') stepBench.batch = Number(argv[++i]);
    else if (stepBench && a === '--steps-count') stepBench.steps = Number(argv[++i]);
    else if (stepBench && a === '--steps-no-replay') stepBench.replay = false;
    else if (a === '--conv-variants') convVariantsOnly = true;
    else if (a === '--help' || a === '-h') {
      console.log(`usage: npm run bench -- [--quick] [--filter REGEX] [--reps N]
  --quick    fewer and smaller cases (a CPU fallback adapter takes minutes for the full set)
  --filter   run only cases whose name matches REGEX
  --reps     timed repetitions per case (default: chosen from a first timing, 1..20)
  --train P  also time training steps of MNIST presets P (comma-separated, e1 for the E.1 model of bench:frameworks, or all) at batch 32
             (batch 8 and small widths with --quick), with a per-kernel profile of one step and a
             line setting each step's GFLOP/s against the best matmul of equal work (target 0.6), then the
             evaluation forward timed and profiled the same way (--forward-only: that alone)
  --sample   instead, time sampling a batch (default the Table-1 model, 28x28, batch 64): incremental
             vs one forward pass, and the full-recompute sampler at a small size
             (--sample-preset P, --sample-batch N, --sample-full-size S (default 8); --quick: small widths)
  --sample-hier P  instead, time the hierarchical model's sampling for presets P (comma-separated,
             e.g. tiny,small) at batch 16 (--sample-hier-batch N): incremental vs the full-recompute
             sampler, timed for tiny and estimated from one pass per network for the others
             (--sample-hier-full P: presets to time in full)
  --steps S  instead, time training steps of the app's setups S (comma-separated: tiny, cpu, small,
             table1 = gated-pixelvae-cond at paper sizes; hier-tiny, hier-small = the hierarchical
             model's presets) at batch 32 (--steps-batch N, --steps-count N):
             steps/s, host ms per step (recording and submitting) apart from the GPU wait, and the
             dispatches, buffer copies and bind groups created per step; host ms of replayed steps
             (issued from a recording of earlier ones) apart from recorded ones
             (--steps-no-replay: record every step through the engine, for comparison)
  --conv-variants  instead, time the conv kernel variants (CPU-shaped, tiled) per direction on a few
             representative shapes, print the choice and the timings (ms, best of 2 after a warm-up),
             and remember the choice for this adapter in the OS cache dir (pixelvae-lab/conv-variants.json)`);
      process.exit(0);
    } else {
      console.error(`bench: unknown argument ${a} (try --help)`);
      process.exit(2);
    }
  }
  return args;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const gpu = new GpuContext(await acquireDevice(nodeGpu()));
  E.initEngine(gpu);
  const emit = (record: Record<string, unknown>): void => console.log(JSON.stringify(record));
  const s = sampling as SamplingBenchOptions | null;
  const hs = hierSampling as HierSamplingBenchOptions | null;
  const st = stepBench as StepBenchOptions | null;
  // Every row runs the kernels this adapter would train with (the remembered choice, or timed on a GPU).
  if (!convVariantsOnly) await selectConvKernels(gpu);
  if (convVariantsOnly) {
    const report = await chooseConvVariants({ store: fileStore(), remeasure: true });
    const adapter = `${gpu.adapter.vendor || '?'} ${gpu.adapter.architecture || gpu.adapter.description || '?'}${gpu.adapter.isFallbackAdapter ? ' (fallback)' : ''}`;
    emit({ adapter, driver: process.env.VK_ICD_FILENAMES ?? 'system', case: 'conv variants', ...report });
  } else if (st) await runStepBench(gpu, st, emit, process.env.VK_ICD_FILENAMES ?? 'system');
  else if (hs) await runHierSamplingBench(gpu, hs, emit, process.env.VK_ICD_FILENAMES ?? 'system');
  else if (s) await runSamplingBench(gpu, { ...s, quick: args.quick }, emit, process.env.VK_ICD_FILENAMES ?? 'system');
  else await runBench(gpu, args, emit, process.env.VK_ICD_FILENAMES ?? 'system');
  gpu.destroy();
}

main().catch((error: unknown) => {
  console.error(`bench failed: ${(error as Error).message}`);
  process.exit(1);
});
