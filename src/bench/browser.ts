// bench.html: the benchmark cases in the browser, on navigator.gpu. Each record is printed as a JSON
// line on the page and in the console (scripts/bench-browser.mjs collects them from headless Chromium).
import { GpuContext } from '../gpu/context';
import { acquireDevice } from '../gpu/device';
import { initEngine } from '../engine';
import { runBench } from './cases';

const out = document.getElementById('out')!;
const status = document.getElementById('status')!;

function print(line: string): void {
  out.textContent += `${line}\n`;
  console.log(line);
}

async function main(): Promise<void> {
  const query = new URLSearchParams(location.search);
  const filter = query.get('filter');
  const options = {
    quick: query.get('quick') === '1',
    train: (query.get('train') ?? '').split(',').filter(Boolean),
    filter: filter ? new RegExp(filter) : null,
    reps: Number(query.get('reps') ?? 0),
  };
  const gpu = new GpuContext(await acquireDevice(navigator.gpu));
  initEngine(gpu);
  status.textContent = `running on ${gpu.adapter.vendor} ${gpu.adapter.architecture}${gpu.adapter.isFallbackAdapter ? ' (fallback adapter)' : ''}...`;
  await runBench(gpu, options, (record) => print(JSON.stringify({ ...record, runtime: 'browser' })), navigator.userAgent.match(/Chrom\w+\/[\d.]+/)?.[0] ?? 'browser');
  status.textContent = 'done';
  document.body.dataset.done = '1';
}

main().catch((error: unknown) => {
  status.textContent = `benchmark failed: ${(error as Error).message}`;
  print(JSON.stringify({ error: (error as Error).message }));
  document.body.dataset.done = '1';
});
