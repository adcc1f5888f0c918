#!/usr/bin/env node
// `npm run bench:browser`: runs bench.html from the production build in headless Chromium with WebGPU
// and prints its JSON lines. Arguments become the page's query: --quick, --filter REGEX, --train P, --reps N.
// Chromium: /usr/bin/chromium (Debian) unless CHROMIUM is set. On a machine without a GPU, WebGPU runs
// on SwiftShader. The preview server runs on port 4181 (BENCH_PORT to change it); a port already in use is
// refused, so a leftover server can never be measured in place of the current build.
import { runBenchPage } from './bench-page.mjs';

const query = new URLSearchParams();
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--quick') query.set('quick', '1');
  else if (a === '--filter' || a === '--train' || a === '--reps') query.set(a.slice(2), argv[++i] ?? '');
  else {
    console.error(`bench:browser: unknown argument ${a} (--quick, --filter REGEX, --train P, --reps N)`);
    process.exit(2);
  }
}

const port = Number(process.env.BENCH_PORT ?? 4181);
const failed = await runBenchPage({ label: 'bench:browser', port, page: 'bench.html', query });
process.exit(failed ? 1 : 0);
