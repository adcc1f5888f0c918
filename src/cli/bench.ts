// `npm run bench`: the benchmark cases of src/bench/cases.ts in Node, on whatever adapter Dawn finds;
// one JSON line per case.
import { GpuContext } from '../gpu/context';
import { acquireDevice } from '../gpu/device';
import { nodeGpu } from '../gpu/node';
import * as E from '../engine';
import { runBench, type BenchOptions } from '../bench/cases';

function parseArgs(argv: string[]): BenchOptions {
  const args: BenchOptions = { quick: false, train: [], filter: null, reps: 0 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick') args.quick = true;
    else if (a === '--filter') args.filter = new RegExp(argv[++i] ?? '');
    else if (a === '--reps') args.reps = Number(argv[++i]);
    else if (a === '--train') args.train = (argv[++i] ?? '').split(',').filter(Boolean);
    else if (a === '--help' || a === '-h') {
      console.log(`usage: npm run bench -- [--quick] [--filter REGEX] [--reps N]
  --quick    fewer and smaller cases (a CPU fallback adapter takes minutes for the full set)
  --filter   run only cases whose name matches REGEX
  --reps     timed repetitions per case (default: chosen from a first timing, 1..20)
  --train P  also time training steps of MNIST presets P (comma-separated, or 'all') at batch 32
             (batch 8 and small widths with --quick), with a per-kernel profile of one step`);
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
  await runBench(gpu, args, (record) => console.log(JSON.stringify(record)), process.env.VK_ICD_FILENAMES ?? 'system');
  gpu.destroy();
}

main().catch((error: unknown) => {
  console.error(`bench failed: ${(error as Error).message}`);
  process.exit(1);
});
