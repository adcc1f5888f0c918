#!/usr/bin/env node
// Writes docs/results.md and its plots from the model zoo's trainings and evaluations (scripts/zoo.mjs:
// the PyTorch twin trains every row on the same number of images and evaluates the float16 weights).
//
//   npm run results                 # collect runs/zoo into docs/figures/results.json, then write the page
//   npm run results -- --from-json  # rewrite the page from docs/figures/results.json alone
//
// Every number on the page is read from the zoo's JSON (eval.json, runs.json, the checkpoints' configs)
// or from scripts/zoo-figures.py's output; nothing is typed in by hand except the paper's own figures,
// which are quoted as the paper's. The statements under each table are computed from its rows.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkpointConfig, pairedDifference, readHeader, readPerImage } from './zoo-lib.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const STATE = join(ROOT, 'runs', 'zoo');
/**
 * Longer runs of single models (not the page's budget), the ones the app ships: the Table-1 model's
 * (runs/zoo-long) and the Figure-5 pair's (runs/zoo-200k). Kept in results.json under `long`.
 */
const LONG_DIRS = ['zoo-long', 'zoo-200k'];
const LONG_STATES = LONG_DIRS.map((d) => join(ROOT, 'runs', d));
/** Was a figure drawn from a longer run's checkpoint (figures.json names its path)? */
const fromLongRun = (checkpoint) => LONG_DIRS.some((d) => String(checkpoint ?? '').includes(`${d}/`));
/**
 * Figure 4 again at ten times the page's budget (scripts/fig4-sweep.sh): a PixelVAE beside the gated
 * PixelCNN at 1-8 layers, for each PixelVAE variant below. Kept in results.json, so a depth trained in
 * one sitting stays on the page when the next sitting's checkout has no runs/ folder.
 */
const SWEEP_STATE = join(ROOT, 'runs', 'zoo-500k');
const SWEEP_VARIANTS = [
  {
    vae: 'gated-pixelvae-cond',
    plot: 'fig4-sweep-nll.svg',
    klPlot: 'fig4-sweep-kl.svg',
    heading: '',
    label: 'PixelVAE with z in every gate',
    about: 'with the PixelVAE variant that keeps z in every gate (gated-pixelvae-cond: at 12 layers the Table-1 model\'s architecture, with fewer layers below that) instead of the upsampling decoder: a departure from the paper\'s Figure 4, whose PixelVAE upsamples',
  },
  {
    vae: 'gated-pixelvae-rms',
    plot: 'fig4-sweep-rms-nll.svg',
    klPlot: 'fig4-sweep-rms-kl.svg',
    heading: ', the upsampling PixelVAE with rms-tanh features',
    label: 'upsampling rms-tanh PixelVAE',
    about: 'with the paper\'s upsampling PixelVAE (gated-pixelvae) whose decoder features are divided by their rms before the tanh (featureNorm rms-tanh, docs/departures.md), beside the same gated PixelCNN runs as the section above',
  },
];
/** The 500,000-image sweep's depths after the 0-layer point: the paper's Figure 4 (as DEPTHS below). */
const SWEEP_DEPTHS = [1, 2, 4, 8, 12];
/** The sweep's 0-layer PixelVAE (both variants): the conv VAE at the sweep's budget. */
const SWEEP_L0 = 'fig4-conv-vae-l0';
const FIGS = join(ROOT, 'docs', 'figures');
const DATA = join(FIGS, 'results.json');
const PAGE = join(ROOT, 'docs', 'results.md');

/** Table 1's rows: our preset, the zoo run that trained it, and the paper's figure for it (nats, test). */
const TABLE1 = [
  { preset: 'conv-vae', id: 'table1-conv-vae', paper: '≤ 87.41', name: 'Convolutional VAE' },
  { preset: 'pixelcnn', id: 'results-pixelcnn', paper: '= 81.30 (van den Oord et al.)', name: 'PixelCNN' },
  { preset: 'gated-pixelcnn', id: 'table1-gated-pixelcnn', paper: '= 80.10', name: 'Gated PixelCNN' },
  { preset: 'pixelvae', id: 'results-pixelvae', paper: '≤ 80.64', name: 'PixelVAE' },
  { preset: 'gated-pixelvae', id: 'results-gated-pixelvae', paper: '≈ 79.48 (≤ 80.02)', name: 'Gated PixelVAE' },
  { preset: 'gated-pixelvae-cond', id: 'table1-gated-pixelvae', paper: '≈ 78.96 (≤ 79.58)', name: 'Gated PixelVAE without upsampling' },
];
const DEPTHS = [1, 2, 4, 8, 12];
/** Figure 4's runs: layers -> zoo id, for the PixelVAE (upsampling, gated) and the gated PixelCNN. */
const sweepId = (model, layers) => (layers === 12 ? (model === 'pixelvae' ? 'results-gated-pixelvae' : 'table1-gated-pixelcnn') : `fig4-gated-${model}-l${layers}`);
/** Figure 5's rows: two PixelVAEs (the paper does not say which decoder its 2-D PixelVAE had), each checked against the conv VAE. */
const FIG5 = [
  { id: 'fig5-pixelvae-2d', name: 'PixelVAE (gated, z in every layer)', paper: '7.2%', pixelvae: true },
  { id: 'fig5-pixelvae-2d-upsample', name: 'PixelVAE (gated, upsampling, rms-tanh features, 1 layer)', paper: '7.2%', pixelvae: true },
  { id: 'fig5-conv-vae-2d', name: 'Convolutional VAE', paper: '22.9%', pixelvae: false },
];
const HIER = ['hier-colour-mnist', 'hier-demo'];

const readJson = (p, fallback = null) => (existsSync(p) ? JSON.parse(readFileSync(p, 'utf8')) : fallback);

// ---- collect ---------------------------------------------------------------------------------------
function collectModel(id, state = STATE) {
  const dir = join(state, id);
  const last = join(dir, 'last.safetensors');
  const evaluation = readJson(join(dir, 'eval.json'));
  if (!existsSync(last) || !evaluation) return null;
  const bytes = new Uint8Array(readFileSync(last));
  const config = checkpointConfig(bytes, last);
  const { header } = readHeader(bytes, last);
  let params = 0;
  for (const [name, t] of Object.entries(header)) if (!name.startsWith('optim/') && !/running_(mean|var)$/.test(name)) params += t.shape.reduce((a, b) => a * b, 1);
  const runs = readJson(join(dir, 'runs.json'), []);
  const batch = config.optimizer?.batchSize ?? null;
  return {
    id,
    preset: config.preset,
    sizes: config.sizes,
    params,
    steps: config.step,
    batch,
    wallSeconds: Math.round(runs.reduce((s, r) => s + (r.seconds ?? 0), 0)),
    hardware: [...new Set(runs.map((r) => r.hardware))].join('; '),
    command: runs[0]?.command ?? null,
    figures: evaluation.figures,
    crossCheck: evaluation.crossCheck ?? null,
  };
}

/**
 * Each sweep run's per-image -ELBO (zoo-eval --per-image: 10,000 float64, 80 KB) is copied beside
 * results.json, so the two runs of a pair can be compared image by image even when they were trained
 * in different sittings and only one of them is still under runs/.
 */
const PER_IMAGE = join(FIGS, 'per-image');
const perImageFile = (id) => join(PER_IMAGE, `${id}-elbo.f64`);

/** The paired difference of two sweep runs' per-image -ELBO, or null without both files. */
function pairedRuns(idA, idB) {
  const files = [idA, idB].map(perImageFile);
  if (!files.every(existsSync)) return null;
  const [a, b] = files.map((p) => readPerImage(readFileSync(p), p));
  return a.length === b.length ? pairedDifference(a, b) : null;
}

function collect() {
  const old = readJson(DATA, { models: {} });
  if (![STATE, ...LONG_STATES, SWEEP_STATE].some(existsSync)) throw new Error(`none of runs/zoo, ${LONG_DIRS.map((d) => `runs/${d}`).join(', ')}, runs/zoo-500k exists: run \`npm run zoo\` first, or use --from-json`);
  // Rows measured earlier stay (results.json is the record); rows found under runs/ replace them.
  const models = { ...old.models };
  for (const id of existsSync(STATE) ? readdirSync(STATE) : []) {
    const m = collectModel(id);
    if (m) models[id] = m;
  }
  const sweep = { ...(old.sweep ?? {}) };
  for (const id of existsSync(SWEEP_STATE) ? readdirSync(SWEEP_STATE) : []) {
    const m = collectModel(id, SWEEP_STATE);
    if (!m) continue;
    sweep[id] = m;
    const perImage = join(SWEEP_STATE, id, 'per-image-elbo.f64');
    mkdirSync(PER_IMAGE, { recursive: true });
    if (existsSync(perImage)) copyFileSync(perImage, perImageFile(id));
    else rmSync(perImageFile(id), { force: true }); // a copy from an earlier run of this id would not be these weights'
  }
  for (const { vae } of SWEEP_VARIANTS) {
    for (const l of SWEEP_DEPTHS) {
      const [v, c] = [`fig4-${vae}-l${l}`, `fig4-gated-pixelcnn-l${l}`];
      const d = pairedRuns(v, c);
      if (sweep[v]) sweep[v].paired = d ? { against: c, ...d } : undefined;
    }
  }
  // A seed replicate (`<id>-seed<n>`) is paired with its seed-1 run, and a PixelVAE replicate also with
  // the PixelCNN of its depth at the same seed, each over the same test images.
  for (const id of Object.keys(sweep)) {
    const [, base, seed] = id.match(/^(.*)-seed(\d+)$/) ?? [];
    if (!base) continue;
    const d = sweep[base] ? pairedRuns(id, base) : null;
    sweep[id].pairedSeed1 = d ? { against: base, ...d } : undefined;
    const [, l] = base.match(/^fig4-gated-pixelvae-(?:cond|rms)-l(\d+)$/) ?? [];
    const c = l ? `fig4-gated-pixelcnn-l${l}-seed${seed}` : null;
    const e = c && sweep[c] ? pairedRuns(id, c) : null;
    sweep[id].paired = e ? { against: c, ...e } : undefined;
  }
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
  } catch {}
  const long = { ...(old.long ?? {}) };
  for (const state of LONG_STATES.filter(existsSync)) {
    for (const id of readdirSync(state)) {
      const m = collectModel(id, state);
      if (m) long[id] = m;
    }
  }
  const factorised = readJson(join(FIGS, 'factorised.json'), old.factorised ?? null);
  const figures = readJson(join(FIGS, 'figures.json'), old.figures ?? []);
  const data = { generated: new Date().toISOString(), commit, models, long, sweep, factorised, figures };
  mkdirSync(FIGS, { recursive: true });
  writeFileSync(DATA, `${JSON.stringify(data, null, 2)}\n`);
  return data;
}

// ---- plots (plain SVG) ------------------------------------------------------------------------------
const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;');

/** A line chart: series [{ name, colour, dash?, points: [[x, y, se?]] }], x on a categorical axis. */
function lineChart({ title, xLabel, yLabel, xs, series, width = 560, height = 360 }) {
  const m = { l: 64, r: 170, t: 34, b: 48 };
  const w = width - m.l - m.r;
  const h = height - m.t - m.b;
  // The y range of the points drawn (those on the x axis), so a left-out 0-layer point does not stretch it.
  const ys = series.flatMap((s) => s.points.filter(([x]) => xs.includes(x)).flatMap(([, y, se = 0]) => [y - se, y + se]));
  let lo = Math.min(...ys);
  let hi = Math.max(...ys);
  const pad = (hi - lo) * 0.08 || 1;
  lo -= pad;
  hi += pad;
  const step = niceStep((hi - lo) / 6);
  // Nats, bits and error rates are never negative: no axis below zero for them.
  lo = Math.min(...ys) >= 0 ? Math.max(0, Math.floor(lo / step) * step) : Math.floor(lo / step) * step;
  hi = Math.ceil(hi / step) * step;
  const X = (x) => m.l + (xs.indexOf(x) / Math.max(1, xs.length - 1)) * w;
  const Y = (y) => m.t + (1 - (y - lo) / (hi - lo)) * h;
  const out = [`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`];
  out.push(`<rect width="${width}" height="${height}" fill="white"/>`);
  out.push(`<text x="${m.l}" y="20" font-size="14" font-weight="bold">${esc(title)}</text>`);
  for (let y = lo; y <= hi + step / 2; y += step) {
    out.push(`<line x1="${m.l}" x2="${m.l + w}" y1="${Y(y).toFixed(1)}" y2="${Y(y).toFixed(1)}" stroke="#e3e3e3"/>`);
    out.push(`<text x="${m.l - 6}" y="${(Y(y) + 4).toFixed(1)}" text-anchor="end">${+y.toFixed(6)}</text>`);
  }
  for (const x of xs) out.push(`<text x="${X(x).toFixed(1)}" y="${m.t + h + 18}" text-anchor="middle">${esc(x)}</text>`);
  out.push(`<line x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${m.t + h}" stroke="#444"/><line x1="${m.l}" x2="${m.l + w}" y1="${m.t + h}" y2="${m.t + h}" stroke="#444"/>`);
  out.push(`<text x="${m.l + w / 2}" y="${height - 10}" text-anchor="middle">${esc(xLabel)}</text>`);
  out.push(`<text transform="translate(16 ${m.t + h / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`);
  series.forEach((s, i) => {
    const pts = s.points.filter(([x]) => xs.includes(x));
    if (pts.length > 1) out.push(`<polyline fill="none" stroke="${s.colour}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''} points="${pts.map(([x, y]) => `${X(x).toFixed(1)},${Y(y).toFixed(1)}`).join(' ')}"/>`);
    for (const [x, y, se] of pts) {
      if (se) out.push(`<line x1="${X(x).toFixed(1)}" x2="${X(x).toFixed(1)}" y1="${Y(y - se).toFixed(1)}" y2="${Y(y + se).toFixed(1)}" stroke="${s.colour}"/>`);
      out.push(`<circle cx="${X(x).toFixed(1)}" cy="${Y(y).toFixed(1)}" r="3.5" fill="${s.colour}"/>`);
    }
    const ly = m.t + 14 + i * 20;
    out.push(`<line x1="${m.l + w + 14}" x2="${m.l + w + 38}" y1="${ly - 4}" y2="${ly - 4}" stroke="${s.colour}" stroke-width="2"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}/>`);
    out.push(`<text x="${m.l + w + 44}" y="${ly}">${esc(s.name)}</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
function niceStep(raw) {
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const f of [1, 2, 2.5, 5, 10]) if (f * p >= raw) return f * p;
  return 10 * p;
}

/**
 * Probes toward Figure 5 (docs/figures/fig5-probes.json): single runs that test why the claim does or
 * does not hold, and the shipped PixelVAEs' k-NN errors measured on their checkpoints while they trained.
 * Each run's command and hardware are in the file; nothing here is shipped.
 */
const FIG5_PROBES = join(FIGS, 'fig5-probes.json');
const pct = (p, n) => `${(100 * p).toFixed(1)}% ± ${(100 * Math.sqrt((p * (1 - p)) / n)).toFixed(1)}`;
function fig5Probes(L) {
  const probes = readJson(FIG5_PROBES);
  if (!probes) return;
  const { trends = [], runs = [] } = probes;
  for (const trend of trends) {
    if (!trend.points?.length) continue;
    const at = trend.points.map((q) => `${pct(q.error, trend.testImages)} at ${(q.step * trend.batch).toLocaleString('en-US')}`).join(', ');
    L.push(`While ${trend.id} trained (${trend.what}), its k-NN error on the first ${trend.testImages.toLocaleString('en-US')} test images, with the first ${trend.trainImages.toLocaleString('en-US')} training images as the labelled set (k ${trend.k}), was ${at} images seen.`);
    L.push('');
  }
  if (runs.length) {
    L.push(`Probes (one run each, not shipped; their commands are in [figures/fig5-probes.json](figures/fig5-probes.json)):`);
    L.push('');
    L.push('| run | images seen | KL (nats) | k-NN error (k, test images, labelled images) |');
    L.push('| --- | ---: | ---: | ---: |');
    for (const r of runs) {
      L.push(`| ${r.what} | ${r.images.toLocaleString('en-US')} | ${r.kl.value.toFixed(2)} (${r.kl.split}, ${r.kl.n.toLocaleString('en-US')} images) | ${pct(r.knn.error, r.knn.testImages)} (${r.knn.k}, ${r.knn.testImages.toLocaleString('en-US')}, ${r.knn.trainImages.toLocaleString('en-US')}) |`);
    }
    L.push('');
    L.push('One reading of these rows, not tested directly: in the models with z in every gate, z reaches the decoder only as a constant per image and channel added to each gate, with no spatial layout, so a 2-D z is most useful to the likelihood as a global style (ink, slant) and the PixelCNN draws the class. The upsampling decoder gives z a spatial map; under the plain tanh its features grew until the tanh was flat and it left its latent unused (the second probe; docs/departures.md, row "gated-pixelvae\'s decoder features"). With each image\'s features divided by their rms before the tanh (featureNorm \'rms-tanh\') it kept its latent and separates the classes better than the conv VAE (the table above). Depth is not what separates them: with 1 PixelCNN layer, like the rms-tanh model, and the same 200,000 images, the z-in-every-gate model still leaves the classes mixed (the third probe). One run of each model.');
    L.push('');
  }
}

// ---- the page ---------------------------------------------------------------------------------------
/** The Table-1 model trained past the page's budget (runs/zoo-long): the one the app ships, beside its equal-budget row. */
function longRun(L, data) {
  const m = data.long?.['table1-gated-pixelvae'];
  const short = data.models['table1-gated-pixelvae'];
  if (!m) return;
  const is = fig(m, 'IS-NLL');
  const kl = fig(m, 'KL');
  L.push('### The shipped Table-1 model: a longer run');
  L.push('');
  L.push(`The app's gallery ships this model, not the equal-budget row above: the same preset and twin, trained on ${(m.steps * m.batch).toLocaleString('en-US')} images (${m.steps.toLocaleString('en-US')} steps of batch ${m.batch}, KL warm-up over the first 20%) in ${fmtTime(m.wallSeconds)} on ${m.hardware}, evaluated the same way on its float16 weights. Its command is in public/models/manifest.json and \`runs/zoo-long/table1-gated-pixelvae/run-1.command\`.`);
  L.push('');
  L.push('| run | images seen | -ELBO (n = 10k) | IS-NLL (k, n) | KL | reconstruction |');
  L.push('| --- | ---: | ---: | ---: | ---: | ---: |');
  for (const [name, r] of [['equal-budget row', short], ['longer run (shipped)', m]]) {
    if (!r) continue;
    const e = fig(r, '-ELBO');
    const i = fig(r, 'IS-NLL');
    const k = fig(r, 'KL');
    L.push(`| ${name} | ${(r.steps * r.batch).toLocaleString('en-US')} | ${num(e)} | ${num(i)} (${i?.k ?? '—'}, ${i?.n ?? '—'}) | ${num(k)} | ${e && k ? (e.value - k.value).toFixed(2) : '—'} |`);
  }
  L.push('');
  if (is) L.push(`- IS-NLL ≤ 85 nats with the longer run: ${yes(is.value + is.stderr <= 85)} (${num(is)}, k ${is.k}, n ${is.n}; the paper: 78.96 with N = 5000 after 20,000,000 images).`);
  if (kl) L.push(`- Its latent carries ${num(kl)} nats (KL), against ${num(fig(short, 'KL'))} at the equal budget.`);
  if (m.crossCheck) L.push(`- The Node CLI on the float16 file: ${m.crossCheck.figure} ${m.crossCheck.value.toFixed(2)} against the twin's ${m.crossCheck.twin.toFixed(2)} on the first ${m.crossCheck.n} test images (k ${m.crossCheck.k ?? '—'}): ${m.crossCheck.agrees ? 'they agree within the standard error' : 'they DIFFER by more than the standard error'}.`);
  L.push('');
}

/**
 * How loose the page's k-sample IS-NLL is (docs/figures/is-nll-ladder.json, from
 * scripts/is-nll-ladder.mjs): each shipped model's estimate from the first k of K samples per image.
 * Returns, for the differences section, each record whose ladder has the page's k below its K, with that rung.
 */
const IS_NLL_LADDER = join(FIGS, 'is-nll-ladder.json');
function isNllLadder(L, data) {
  const runs = readJson(IS_NLL_LADDER)?.runs ?? [];
  if (!runs.length) return [];
  const pageK = fig(data.models['table1-gated-pixelvae'], 'IS-NLL')?.k;
  L.push('### How loose the IS-NLL is with few importance samples');
  L.push('');
  L.push(`IS-NLL is an upper bound that tightens as the number of importance samples grows; this page uses k = ${pageK ?? '?'}, the paper N = 5000. Below, each model's estimate from the first k of K samples per test image: the same draws for every k, so each difference from K is paired per image. Evaluated on the shipped float16 weights; the commands are in [figures/is-nll-ladder.json](figures/is-nll-ladder.json).`);
  L.push('');
  L.push('| model | test images | k | IS-NLL | minus the K-sample estimate | budget |');
  L.push('| --- | ---: | ---: | ---: | ---: | --- |');
  const f2 = (st) => `${st.mean.toFixed(2)} ± ${st.stderr.toFixed(2)}`;
  for (const r of runs) {
    r.ladder.forEach((row, i) => {
      const budget = i === 0 ? `K = ${r.k}: ${fmtTime(r.seconds)} on ${r.hardware}, ${r.threads} torch thread${r.threads === 1 ? '' : 's'}` : '';
      L.push(`| ${i === 0 ? r.model : ''} | ${i === 0 ? r.images.toLocaleString('en-US') : ''} | ${row.k.toLocaleString('en-US')} | ${f2(row.is_nll)} | ${row.k === r.k ? '0 (K)' : f2(row.minus_largest)} | ${budget} |`);
    });
  }
  L.push('');
  const gaps = runs.map((r) => ({ r, at: r.ladder.find((row) => row.k === pageK) })).filter(({ r, at }) => at && at.k !== r.k);
  for (const { r, at } of gaps) {
    const shipped = fig(data.long?.[r.model] ?? data.models[r.model], 'IS-NLL');
    const gap = at.minus_largest;
    const last = r.ladder.at(-2);
    L.push(`- ${r.model}: the k = ${pageK} estimate minus the k = ${r.k.toLocaleString('en-US')} one is ${f2(gap)} nats on its first ${r.images.toLocaleString('en-US')} test images${shipped && shipped.k === pageK ? `. Taking that off its k = ${pageK} figure over ${shipped.n.toLocaleString('en-US')} test images (${num(shipped)}) gives about ${(shipped.value - gap.mean).toFixed(2)} at k = ${r.k.toLocaleString('en-US')}: an estimate that assumes the gap on these images holds on the rest, not a measurement` : ''}. The last step, from k = ${last.k.toLocaleString('en-US')} to ${r.k.toLocaleString('en-US')}, moved it by ${f2(last.minus_largest)} nats; N = 5000 is not measured here.`);
  }
  L.push('');
  return gaps;
}

const fig = (m, name) => m?.figures?.find((f) => f.name === name) ?? null;
const num = (f, d = 2) => (f ? `${f.value.toFixed(d)} ± ${f.stderr < 0.5 * 10 ** -d ? `< ${(10 ** -d).toFixed(d)}` : f.stderr.toFixed(d)}` : '—');
const fmtTime = (s) => (s < 90 ? `${s} s` : s < 5400 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`);
const yes = (b) => (b ? 'yes' : 'no');
/** Whether a difference (PixelVAE − PixelCNN, with its standard error) says the PixelVAE wins. */
const beatsVerdict = (d) => (Math.abs(d.value) < 2 * d.stderr ? 'not resolved (the difference is within two standard errors)' : yes(d.value < 0));

/**
 * The sweep's seed replicates of the runs shown (`<id>-seed<n>`: the same command with --init-seed and
 * --seed n): how far a run moves from one training to the next, which the test set's standard errors
 * leave out. Pushes a table, and onto `claims` the comparison at each depth whose PixelVAE and PixelCNN
 * both have the replicate.
 */
function seedReplicates(L, S, bases, claims) {
  const reps = bases.flatMap((base) => Object.keys(S).map((id) => [id, id.match(/^(.*)-seed(\d+)$/)]).filter(([, m]) => m?.[1] === base.id).map(([id, m]) => ({ base, run: S[id], seed: Number(m[2]) })));
  if (!reps.length) return;
  L.push('Seed replicates: the same command with other initial weights, data order and noise (`--init-seed n --seed n`; the rows above are seed 1). The difference is paired over the test images:');
  L.push('');
  L.push('| run | seed | -ELBO | KL | seed-1 -ELBO | KL at seed 1 | seed n − seed 1 |');
  L.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  const moves = [];
  for (const { base, run, seed } of reps) {
    const [e, e1] = [fig(run, '-ELBO'), fig(base, '-ELBO')];
    const d = run.pairedSeed1 ?? (e && e1 ? { value: e.value - e1.value, stderr: Math.hypot(e.stderr, e1.stderr), unpaired: true } : null);
    const [k, k1] = [fig(run, 'KL'), fig(base, 'KL')];
    if (d) moves.push({ id: base.id, d, kl: k && k1 ? Math.abs(k.value - k1.value) : null });
    L.push(`| \`${base.id}\` | ${seed} | ${num(e)} | ${num(k)} | ${num(e1)} | ${num(k1)} | ${d ? `${num(d)}${d.unpaired ? ' (unpaired)' : ''}` : '—'} |`);
    // Held to the same comparison as the seed-1 row, when this depth's PixelCNN has the same seed.
    const p = run.paired;
    const nll = p && fig(S[p.against], '-ELBO');
    if (p && e && nll) {
      const l = Number(base.id.match(/-l(\d+)$/)[1]);
      claims.push(`At ${l} layer${l === 1 ? '' : 's'}, both models at seed ${seed}, the PixelVAE's bound beats the PixelCNN's NLL: ${beatsVerdict(p)} (${e.value.toFixed(2)} vs ${nll.value.toFixed(2)}, difference ${num(p)} nats, paired over ${p.n} images).`);
    }
  }
  L.push('');
  if (moves.length) {
    const big = moves.reduce((a, b) => (Math.abs(b.d.value) > Math.abs(a.d.value) ? b : a));
    const kl = moves.filter((m) => m.kl !== null);
    const klMove = kl.length ? ` The KL moved by up to ${Math.max(...kl.map((m) => m.kl)).toFixed(2)} nats.` : '';
    L.push(`The largest move of a bound between seeds is ${num(big.d)} nats (\`${big.id}\`${big.d.unpaired ? ', unpaired' : ''}).${klMove} A difference between two rows of the table that is not well beyond this may be training noise, which the rows' standard errors (over test images) do not include. ${moves.length === 1 ? 'This is one replicate of one run: it shows the size of that noise, not its spread.' : `${moves.length} runs have a replicate.`}`);
    L.push('');
  }
}

/** Figure 4 at the sweep's budget: one PixelVAE variant against the gated PixelCNN, depth by depth from 0 layers. */
function depthSweep(L, data, variant) {
  const S = data.sweep ?? {};
  const vae = (l) => (l === 0 ? S[SWEEP_L0] : S[`fig4-${variant.vae}-l${l}`]);
  // The 0-layer PixelCNN is the factorised model (pixel means, no training), scored exactly.
  const fac = data.factorised;
  const cnn = (l) => (l === 0 ? (fac ? { id: 'factorised', figures: [{ name: '-ELBO', value: fac.nll.mean, stderr: fac.nll.stderr, n: fac.nll.n }] } : undefined) : S[`fig4-gated-pixelcnn-l${l}`]);
  // A variant appears once one of its PixelVAEs is trained (the PixelCNNs are shared).
  if (!SWEEP_DEPTHS.some(vae)) return;
  const runs = [vae(0), ...SWEEP_DEPTHS.flatMap((l) => [vae(l), cnn(l)])].filter(Boolean);
  const budgets = [...new Set(runs.map((m) => m.steps * m.batch))];
  const images = budgets.map((b) => b.toLocaleString('en-US')).join(' / ');
  L.push(`## Figure 4 at ${images} images per point${variant.heading}`);
  L.push('');
  // The page's own Figure-4 PixelVAEs (the 12-layer one is Table 1's gated-pixelvae row), at the depths trained.
  const pageKl = DEPTHS.map((l) => [l, fig(data.models[sweepId('pixelvae', l)], 'KL')?.value]).filter(([, v]) => v !== undefined);
  const pageNote = pageKl.length ? `At the page's budget the upsampling PixelVAEs of Figure 4 carry at most ${Math.max(...pageKl.map(([, v]) => v)).toFixed(2)} nats in their latents at ${pageKl.map(([l]) => l).join(', ')} layers (above). ` : '';
  L.push(`${pageNote}This sweep trains ${budgets.length === 1 ? 'every point on the same' : 'its points on'} ${images} images (${runs[0].steps.toLocaleString('en-US')} steps of batch ${runs[0].batch}, KL warm-up over the first 20%), ${variant.about}. Both models are evaluated on the whole test set (10,000 images) with one posterior draw per image. The difference is paired: the mean over test images of (PixelVAE -ELBO − PixelCNN NLL), with its own standard error, which is far smaller than either model's because the hard images are hard for both (a row marked unpaired lacked the per-image figures and treats the two means as independent). Trained one model at a time on ${[...new Set(runs.map((m) => m.hardware))].join('; ')}; the machine also ran the test suite and benchmarks during some runs, and some runs were stopped (\`kill -STOP\`) while benchmarks needed a quiet machine (fig4-gated-pixelvae-cond-l12 for about 80 minutes in all; fig4-gated-pixelcnn-l4-seed2, about 20 minutes of training on a quiet machine, took 1 h 41 min between stops and a loaded machine), which their wall times include, so wall times are upper bounds.`);
  L.push('');
  L.push('| layers | PixelVAE -ELBO | KL | reconstruction | gated PixelCNN NLL | PixelVAE − PixelCNN | wall time (PixelVAE / PixelCNN) |');
  L.push('| ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  const claims = [];
  const missing = [];
  const pts = { vae: [], cnn: [] };
  const kls = [];
  const split = { kl: [], rec: [] };
  for (const l of [0, ...SWEEP_DEPTHS]) {
    const v = vae(l);
    const c = cnn(l);
    if (!v) missing.push(l === 0 ? SWEEP_L0 : `fig4-${variant.vae}-l${l}`);
    if (!c && l > 0) missing.push(`fig4-gated-pixelcnn-l${l}`); // the 0-layer PixelCNN is not trained: it comes from factorised.json
    const elbo = fig(v, '-ELBO');
    const kl = fig(v, 'KL');
    const nll = fig(c, '-ELBO');
    // The 0-layer points sit far above the rest: in the table and the KL claim, not in the plot or the trend.
    if (kl && l > 0) kls.push([l, kl]);
    if (kl) split.kl.push([l, kl.value, kl.stderr]);
    if (kl && elbo) split.rec.push([l, elbo.value - kl.value]);
    if (elbo && l > 0) pts.vae.push([l, elbo.value, elbo.stderr]);
    if (nll && l > 0) pts.cnn.push([l, nll.value, nll.stderr]);
    let diff = null;
    if (elbo && nll) {
      // Paired over the same test images when both runs kept each image's figure; otherwise as independent means.
      const p = v.paired?.against === c.id ? v.paired : null;
      diff = p ? { ...p, paired: true } : { value: elbo.value - nll.value, stderr: Math.hypot(elbo.stderr, nll.stderr), paired: false };
      // The paper claims the PixelVAE wins below 10 layers; deeper rows are reported, not held to that claim.
      const beyond = l >= 10 ? ' (beyond the paper\'s claim, which is for fewer than 10 layers)' : '';
      claims.push(`At ${l} layer${l === 1 ? '' : 's'}${beyond} the PixelVAE's bound beats the PixelCNN's NLL: ${beatsVerdict(diff)} (${elbo.value.toFixed(2)} vs ${nll.value.toFixed(2)}, difference ${num(diff)} nats, ${diff.paired ? `paired over ${diff.n} images` : 'unpaired'}).`);
    }
    const cnnTime = l === 0 ? 'no training' : c ? fmtTime(c.wallSeconds) : '—';
    L.push(`| ${l} | ${num(elbo)} | ${num(kl)} | ${elbo && kl ? (elbo.value - kl.value).toFixed(2) : '—'} | ${num(nll)} | ${diff ? `${num(diff)}${diff.paired ? '' : ' (unpaired)'}` : '—'} | ${v ? fmtTime(v.wallSeconds) : '—'} / ${cnnTime} |`);
  }
  L.push('');
  L.push(`The 0-layer PixelVAE is the conv VAE (\`${SWEEP_L0}\`: the upsampling PixelVAE's encoder and decoder with a factorised output, shared by both sweeps); the 0-layer PixelCNN is the factorised model of the Figure 4 section above (each pixel's mean over the training set, no training), so that row's difference is unpaired. The plot starts at 1 layer because the 0-layer points sit far above the rest.`);
  L.push('');
  // The two variants' plots sit on one page: each title and alt text names its PixelVAE.
  const { plot, klPlot, label } = variant;
  if (pts.vae.length > 1 && pts.cnn.length > 1) {
    // The x axis is categorical: only depths with a point, so an untrained depth leaves no empty column.
    const xs = SWEEP_DEPTHS.filter((l) => [...pts.vae, ...pts.cnn].some(([x]) => x === l));
    writeFileSync(join(FIGS, plot), lineChart({
      title: `Figure 4a at ${images} images, ${label}`, xLabel: 'residual PixelCNN layers', yLabel: 'nats per image (test set)', xs,
      series: [
        { name: 'PixelVAE -ELBO', colour: '#1f77b4', points: pts.vae },
        { name: 'Gated PixelCNN NLL', colour: '#d62728', points: pts.cnn },
      ],
    }));
    L.push(`![Figure 4a at ${images} images, ${label}: NLL against PixelCNN layers](figures/${plot})`);
    L.push('');
  } else if (existsSync(join(FIGS, plot))) rmSync(join(FIGS, plot));
  // Figure 4b: the PixelVAE's bound split into KL and reconstruction, from the conv VAE (0 layers) on.
  if (split.kl.length > 1) {
    const xs = [0, ...SWEEP_DEPTHS].filter((l) => split.kl.some(([x]) => x === l));
    writeFileSync(join(FIGS, klPlot), lineChart({
      title: `Figure 4b at ${images} images, ${label}`, xLabel: 'residual PixelCNN layers (0: conv VAE)', yLabel: 'nats per image (test set)', xs,
      series: [
        { name: 'KL', colour: '#2ca02c', points: split.kl },
        { name: 'reconstruction', colour: '#9467bd', points: split.rec },
      ],
    }));
    L.push(`![Figure 4b at ${images} images, ${label}: the bound split into KL and reconstruction](figures/${klPlot})`);
    L.push('');
  } else if (existsSync(join(FIGS, klPlot))) rmSync(join(FIGS, klPlot));
  if (missing.length) {
    L.push(`Not trained yet at this budget (each point takes 40 minutes to a few hours on this machine; \`${variant.vae === 'gated-pixelvae-cond' ? '' : `FIG4_VAE=${variant.vae} `}bash scripts/fig4-sweep.sh\` trains the sweep in order, resuming, and \`npm run results\` adds what it finished): ${missing.map((id) => `\`${id}\``).join(', ')}. The command for one: \`npm run zoo -- --images 500000 --warmup 0.2 --state runs/zoo-500k --only <id>\`.`);
    L.push('');
  }
  seedReplicates(L, S, [0, ...SWEEP_DEPTHS].flatMap((l) => [vae(l), l > 0 ? cnn(l) : null]).filter(Boolean), claims);
  if (kls.length > 1) {
    // The trend of the latent's information with depth, with each step's change against its standard error.
    const steps = kls.slice(1).map(([, k], i) => ({ change: k.value - kls[i][1].value, stderr: Math.hypot(k.stderr, kls[i][1].stderr) }));
    const clear = steps.every((d) => Math.abs(d.change) > 2 * d.stderr);
    const trend = steps.every((d) => d.change > 0) ? 'rises with every added depth' : steps.every((d) => d.change < 0) ? 'falls with every added depth' : 'does not move one way with depth';
    claims.push(`The PixelVAE's KL, the information in its latent: ${kls.map(([l, k]) => `${k.value.toFixed(2)} at ${l}`).join(', ')} layers; it ${trend}${clear ? ' (each change beyond two standard errors)' : ''}.${fig(vae(0), 'KL') ? '' : ' The paper\'s text claims only a sharp fall from 0 to 1 layer, which this sweep has no 0-layer point to test yet.'}`);
  }
  const [kl0, kl1] = [fig(vae(0), 'KL'), fig(vae(1), 'KL')];
  if (kl0 && kl1) claims.push(`KL falls sharply from 0 to 1 PixelCNN layer (the paper's claim): ${yes(kl1.value < 0.5 * kl0.value)} (${kl0.value.toFixed(2)} in the conv VAE → ${kl1.value.toFixed(2)} nats at 1 layer).`);
  if (claims.length) {
    L.push('Figure 4\'s claim, checked on the rows above:');
    for (const c of claims) L.push(`- ${c}`);
    L.push('');
  }
}

function page(data) {
  const M = data.models;
  const L = [];
  const mnist = Object.values(M).filter((m) => !m.preset.startsWith('hier-'));
  const budgets = [...new Set(mnist.map((m) => `${m.steps * m.batch}`))];
  const hardware = [...new Set(Object.values(M).map((m) => m.hardware))].join('; ');
  const anyIs = mnist.map((m) => fig(m, 'IS-NLL')).find(Boolean);
  L.push('# Results: PixelVAE at this machine\'s budget');
  L.push('');
  L.push(`Written by \`npm run results\` (scripts/results.mjs) on ${data.generated.slice(0, 10)} at commit ${data.commit}, from the model zoo's trainings and evaluations (\`npm run zoo\`, scripts/zoo.mjs). The raw figures are in [figures/results.json](figures/results.json).`);
  L.push('');
  L.push('## Budget and method');
  L.push('');
  L.push(`- **Training**: the PyTorch twin (python/pixelvae_torch) on ${hardware}. Every MNIST row saw the same number of images: ${budgets.map((b) => Number(b).toLocaleString('en-US')).join(' / ')} (${mnist[0]?.steps ?? '?'} steps of batch ${mnist[0]?.batch ?? '?'}), Adam 1e-3, element-wise gradient clip 1, KL warm-up over the first 20% of the steps (the paper: 200k steps of batch 100, warm-up 10k). Each row's wall time is in its table; the machine was shared with other work (tests, figure drawing) during some runs, so wall times are upper bounds. The paper trained ${mnist[0] ? Math.round(2e7 / (mnist[0].steps * mnist[0].batch)) : '?'} times as many images.`);
  L.push('- **Data**: MNIST from the original IDX files, 50k train / 10k valid / 10k test; training images binarized dynamically, test images by one fixed-seed draw (not the Larochelle binarization the paper used, so the figures are close to but not the same as the paper\'s task).');
  L.push(`- **Evaluation**: the twin on the float16 weights the app ships (float16 values widened to float32). -ELBO and KL: the whole test set (10,000 images), one posterior draw per image. IS-NLL: k = ${anyIs?.k ?? '?'} importance samples per image (the paper: N = 5000) on the first n test images, n chosen from a 500-image pilot so the standard error is under 0.3 nats (at most the whole test set). Every figure is "mean ± standard error over images"; n is in each table. With k = ${anyIs?.k ?? '?'} the IS-NLL is a looser bound than the paper's: it is an upper bound on the NLL that tightens as k grows.`);
  L.push('- **Cross-check**: for each shipped model the Node CLI (our WebGPU engine on Dawn, reading the float16 file itself) evaluates the first 50 test images with the same k (up to 10) and the same noise; the table below lists the difference from the twin.');
  L.push('');

  // Table 1
  L.push('## Table 1 (binarized MNIST, nats per image, test split)');
  L.push('');
  L.push('| model (preset) | parameters | images seen | wall time | -ELBO (n = 10k) | IS-NLL (k, n) | KL | reconstruction | paper |');
  L.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
  for (const r of TABLE1) {
    const m = M[r.id];
    if (!m) {
      L.push(`| ${r.name} (${r.preset}) | — | not trained | — | — | — | — | — | ${r.paper} |`);
      continue;
    }
    const elbo = fig(m, '-ELBO');
    const is = fig(m, 'IS-NLL');
    const kl = fig(m, 'KL');
    const rec = elbo && kl ? elbo.value - kl.value : elbo?.value;
    L.push(`| ${r.name} (${r.preset}) | ${m.params.toLocaleString('en-US')} | ${(m.steps * m.batch).toLocaleString('en-US')} | ${fmtTime(m.wallSeconds)} | ${num(elbo)} | ${num(is)} (${is?.k ?? '—'}, ${is?.n ?? '—'}) | ${kl ? num(kl) : '0 (no latent)'} | ${rec !== undefined ? rec.toFixed(2) : '—'} | ${r.paper} |`);
  }
  L.push('');
  const t1missing = TABLE1.filter((r) => !M[r.id]).map((r) => `\`${r.id}\``);
  if (t1missing.length) L.push(`Rows marked "not trained" did not fit this session's time: \`npm run zoo -- --k 10 --only <id>\` trains and evaluates ${t1missing.join(', ')} at the same budget, then \`npm run results\` fills them in.\n`);
  L.push('Models without a latent (PixelCNN, gated PixelCNN) have an exact likelihood: their -ELBO and IS-NLL are the same quantity (the NLL), measured on different numbers of images.');
  L.push('');
  const t1 = M['table1-gated-pixelvae'];
  const claims = [];
  if (t1 && fig(t1, 'IS-NLL')) {
    const v = fig(t1, 'IS-NLL');
    claims.push(`The Table-1 model (gated PixelVAE without upsampling) reaches IS-NLL ≤ 85 nats at this budget: ${yes(v.value + v.stderr <= 85)} (${num(v)}, k ${v.k}; the paper: 78.96 with N = 5000 after 200k steps of batch 100).`);
  }
  const pcnn = M['table1-gated-pixelcnn'];
  if (t1 && pcnn) claims.push(`The gated PixelVAE beats the gated PixelCNN at equal images: ${yes(fig(t1, 'IS-NLL').value < fig(pcnn, 'IS-NLL').value)} (${num(fig(t1, 'IS-NLL'))} vs ${num(fig(pcnn, 'IS-NLL'))}).`);
  const cv = M['table1-conv-vae'];
  if (t1 && cv) claims.push(`Its latent carries information (KL ${num(fig(t1, 'KL'))} nats) while the conv VAE, with no autoregression, puts far more in its latent (KL ${num(fig(cv, 'KL'))}).`);
  const wide = TABLE1.map((r) => M[r.id]).filter((m) => m && fig(m, 'IS-NLL') && fig(m, 'IS-NLL').stderr >= 0.3);
  for (const m of wide) {
    const f = fig(m, 'IS-NLL');
    claims.push(`${m.id}: the IS-NLL's standard error is ${f.stderr.toFixed(2)} nats even on the whole test set (n ${f.n}): its per-image spread (sd ${(f.stderr * Math.sqrt(f.n)).toFixed(1)} nats) is too wide for the 0.3-nat target with 10,000 test images.`);
  }
  for (const c of claims) L.push(`- ${c}`);
  if (claims.length) L.push('');
  longRun(L, data);
  const ladders = isNllLadder(L, data);

  // Figure 4
  L.push('## Figure 4: PixelCNN depth');
  L.push('');
  L.push('The PixelVAE is the gated PixelVAE with the upsampling decoder (the paper\'s "PixelVAE" of this figure); its 0-layer point is the convolutional VAE (the same encoder and upsampling decoder with a factorised output: no autoregression at all). "Layers" counts the residual gated PixelCNN layers after the 7x7 input layer (the reference\'s `-L`). The 0-layer PixelCNN, with neither latent nor autoregression, is the best factorised Bernoulli: each pixel\'s mean grey level over the training set, scored on the test set (no training; scripts/zoo-figures.py).');
  L.push('');
  L.push('| layers | PixelVAE -ELBO | PixelVAE IS-NLL (k, n) | KL | reconstruction | gated PixelCNN NLL (n) |');
  L.push('| ---: | ---: | ---: | ---: | ---: | ---: |');
  const vaeAt = (l) => (l === 0 ? M['table1-conv-vae'] : M[sweepId('pixelvae', l)]);
  const cnnAt = (l) => (l === 0 ? null : M[sweepId('pixelcnn', l)]);
  const fac = data.factorised;
  const pts = { elbo: [], is: [], kl: [], rec: [], cnn: [] };
  for (const l of [0, ...DEPTHS]) {
    const v = vaeAt(l);
    const c = cnnAt(l);
    const elbo = fig(v, '-ELBO');
    const is = fig(v, 'IS-NLL');
    const kl = fig(v, 'KL');
    const cnn = l === 0 && fac ? { value: fac.nll.mean, stderr: fac.nll.stderr, n: fac.nll.n } : fig(c, '-ELBO'); // exact: no latent
    const rec = elbo && kl ? elbo.value - kl.value : null;
    if (elbo) pts.elbo.push([l, elbo.value, elbo.stderr]);
    if (is) pts.is.push([l, is.value, is.stderr]);
    if (kl) pts.kl.push([l, kl.value, kl.stderr]);
    if (rec !== null) pts.rec.push([l, rec]);
    if (cnn) pts.cnn.push([l, cnn.value, cnn.stderr]);
    L.push(`| ${l} | ${num(elbo)} | ${num(is)}${is ? ` (${is.k}, ${is.n})` : ''} | ${num(kl)} | ${rec !== null ? rec.toFixed(2) : '—'} | ${cnn ? `${num(cnn)} (${cnn.n})` : '—'} |`);
  }
  L.push('');
  const xs = [0, ...DEPTHS];
  // A plot needs a curve: at least two depths from 1 layer on for each model.
  const haveNll = pts.elbo.filter(([l]) => l > 0).length > 1 && pts.cnn.filter(([l]) => l > 0).length > 1;
  const missing = [0, ...DEPTHS].flatMap((l) => [l === 0 ? 'table1-conv-vae' : sweepId('pixelvae', l), l === 0 ? null : sweepId('pixelcnn', l)]).filter((id) => id && !M[id]);
  if (missing.length) {
    L.push(`Not trained yet at this budget (the session's time ran out; \`npm run zoo -- --k 10 --only <id>\` trains and evaluates one, and \`npm run results\` adds it here): ${missing.map((id) => `\`${id}\``).join(', ')}.`);
    L.push('');
  }
  for (const f of ['fig4-nll.svg', 'fig4-kl.svg']) if (!haveNll && existsSync(join(FIGS, f))) rmSync(join(FIGS, f));
  if (haveNll) {
    // The 0-layer points are far above the rest; plot from 1 layer so the comparison stays readable.
    writeFileSync(join(FIGS, 'fig4-nll.svg'), lineChart({
      title: 'Figure 4a: NLL against PixelCNN layers (test set)', xLabel: 'residual PixelCNN layers', yLabel: 'nats per image', xs: DEPTHS,
      series: [
        { name: 'PixelVAE -ELBO', colour: '#1f77b4', points: pts.elbo },
        { name: 'PixelVAE IS-NLL', colour: '#1f77b4', dash: '5 4', points: pts.is },
        { name: 'Gated PixelCNN NLL', colour: '#d62728', points: pts.cnn },
      ],
    }));
    writeFileSync(join(FIGS, 'fig4-kl.svg'), lineChart({
      title: 'Figure 4b: the PixelVAE bound split into KL and reconstruction', xLabel: 'residual PixelCNN layers (0: conv VAE)', yLabel: 'nats per image', xs,
      series: [
        { name: 'KL', colour: '#2ca02c', points: pts.kl },
        { name: 'reconstruction', colour: '#9467bd', points: pts.rec },
      ],
    }));
    L.push('![Figure 4a](figures/fig4-nll.svg)');
    L.push('');
    L.push('![Figure 4b](figures/fig4-kl.svg)');
    L.push('');
    L.push('Error bars are one standard error over test images. The 0-layer points are in the table; they are left out of the first plot because they sit far above the rest.');
    L.push('');
  }
  const f4 = [];
  const kl0 = fig(vaeAt(0), 'KL');
  const kl1 = fig(vaeAt(1), 'KL');
  if (kl0 && kl1) f4.push(`KL falls sharply from 0 to 1 PixelCNN layer: ${yes(kl1.value < 0.5 * kl0.value)} (${kl0.value.toFixed(2)} → ${kl1.value.toFixed(2)} nats).`);
  for (const l of DEPTHS.filter((d) => d < 10)) {
    const v = fig(vaeAt(l), '-ELBO');
    const c = fig(cnnAt(l), '-ELBO');
    if (v && c) f4.push(`At ${l} layer${l > 1 ? 's' : ''} the PixelVAE's bound beats the PixelCNN's NLL: ${yes(v.value < c.value)} (${v.value.toFixed(2)} vs ${c.value.toFixed(2)}).`);
  }
  if (f4.length) {
    L.push('The paper\'s claims, checked on the rows above:');
    for (const c of f4) L.push(`- ${c}`);
    L.push('');
  }
  const sweepRuns = Object.values(data.sweep ?? {});
  if (sweepRuns.length && mnist[0]) {
    const ratio = (sweepRuns[0].steps * sweepRuns[0].batch) / (mnist[0].steps * mnist[0].batch);
    // One sentence per variant with a trained point, so the pointer names the sections that follow.
    const shown = SWEEP_VARIANTS.filter((v) => SWEEP_DEPTHS.some((l) => data.sweep[`fig4-${v.vae}-l${l}`]));
    const who = shown.map((v) => `the ${v.label}`).join(', then with ');
    L.push(`The next section${shown.length > 1 ? 's make' : ' makes'} the same comparison at ${Number.isInteger(ratio) ? `${ratio} times` : `${ratio.toFixed(1)} times`} this budget, with ${who}.\n`);
  }

  for (const variant of SWEEP_VARIANTS) depthSweep(L, data, variant);

  // Figure 5: each model at every budget it was trained at (the page's, and a longer run's when there
  // is one); the claim is checked on each budget where both models were trained.
  L.push('## Figure 5: 2-D latent spaces');
  L.push('');
  const imagesOf = (m) => m.steps * m.batch;
  const fig5Runs = FIG5.map((r) => [data.long?.[r.id], M[r.id]].filter(Boolean));
  L.push('| model | images seen | wall time | KL (nats) | IS-NLL | k-NN test error (k = 5, all 10k test images) | paper |');
  L.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  FIG5.forEach((r, i) => {
    for (const m of fig5Runs[i]) {
      const knn = fig(m, 'k-NN error');
      L.push(`| ${r.name} | ${imagesOf(m).toLocaleString('en-US')} | ${fmtTime(m.wallSeconds)} | ${num(fig(m, 'KL'))} | ${num(fig(m, 'IS-NLL'))} | ${knn ? `${(100 * knn.value).toFixed(1)}% ± ${(100 * knn.stderr).toFixed(1)}` : '—'} | ${r.paper} |`);
    }
  });
  L.push('');
  const fig5Budgets = [...new Set(fig5Runs.flat().map(imagesOf))].sort((x, y) => y - x);
  const vaeRuns = fig5Runs[FIG5.findIndex((r) => !r.pixelvae)];
  for (const images of fig5Budgets) {
    const k2 = fig(vaeRuns.find((m) => imagesOf(m) === images), 'k-NN error');
    FIG5.forEach((r, i) => {
      const k1 = r.pixelvae ? fig(fig5Runs[i].find((m) => imagesOf(m) === images), 'k-NN error') : null;
      if (!k1 || !k2) return;
      const gap = k1.value - k2.value;
      const se = Math.hypot(k1.stderr, k2.stderr);
      L.push(`- At ${images.toLocaleString('en-US')} images each, the k-NN error of the ${r.name} is below the 2-D conv VAE's: ${yes(k1.value < k2.value)} (${(100 * k1.value).toFixed(1)}% vs ${(100 * k2.value).toFixed(1)}%, PixelVAE − conv VAE ${gap >= 0 ? '+' : '−'}${Math.abs(100 * gap).toFixed(1)} ± ${(100 * se).toFixed(1)} points; the neighbours are the encoder means of the 50k training images).`);
    });
  }
  L.push('');
  fig5Probes(L);
  const figFile = (name) => (data.figures ?? []).find((x) => x.file === name);
  for (const r of FIG5) {
    const map = figFile(`${r.id}-latent-map.png`);
    const grid = figFile(`${r.id}-latent-grid.png`);
    if (map || grid) {
      const drawn = map ?? grid;
      const m = (fromLongRun(drawn.checkpoint) ? data.long?.[r.id] : null) ?? M[r.id];
      const from = m && (drawn.step === undefined || drawn.step === m.steps) ? ` (drawn from the ${imagesOf(m).toLocaleString('en-US')}-image run)` : '';
      L.push(`**${r.name}**${from}: ${map ? `the test set's encoder means, coloured by digit` : ''}${map && grid ? '; ' : ''}${grid ? 'images decoded from a grid of latent values (the prior\'s quantiles)' : ''}.`);
      L.push('');
      L.push([map && `![${r.id} latent map](figures/${map.file})`, grid && `![${r.id} decoded grid](figures/${grid.file})`].filter(Boolean).join(' '));
      L.push('');
    }
  }

  // Samples
  const samples = (data.figures ?? []).filter((x) => /-samples\.png$/.test(x.file) && !x.file.startsWith('hier-'));
  if (samples.length) {
    L.push('## Samples of the shipped models');
    L.push('');
    for (const s of samples) {
      // The weights that drew it: figures.json names the checkpoint (runs/zoo or a longer run's folder).
      const m = (fromLongRun(s.checkpoint) ? data.long?.[s.id] : null) ?? data.models[s.id];
      const seen = m && (s.step === undefined || s.step === m.steps) ? ` (${(m.steps * m.batch).toLocaleString('en-US')} images seen)` : '';
      L.push(`- ${s.id}${seen}: ![${s.id} samples](figures/${s.file})`);
    }
    L.push('');
  }

  // Hierarchical
  L.push('## The hierarchical model (Figure 6)');
  L.push('');
  const hierLine = (m) => {
    const b = fig(m, 'bits/dim');
    return `preset ${m.preset}, ${m.params.toLocaleString('en-US')} parameters, ${(m.steps * m.batch).toLocaleString('en-US')} images seen in ${fmtTime(m.wallSeconds)}): ${b ? `${num(b, 3)} bits/dim on ${b.n} held-out images (negative ELBO; batch-norm statistics re-estimated on training batches)` : 'not evaluated'}`;
  };
  for (const id of HIER) {
    const m = M[id];
    const long = data.long?.[id];
    if (!m && !long) {
      L.push(`- ${id}: not trained at this budget.`);
      continue;
    }
    // A longer run (runs/zoo-long) is the one the app ships and the grids show, when there is one.
    if (long) {
      L.push(`**${id}**, the shipped longer run (${hierLine(long)}.`);
      if (m) L.push(`At the page's budget (${hierLine(m)}.`);
    } else L.push(`**${id}** (${hierLine(m)}.`);
    L.push('');
    for (const level of ['top', 'middle', 'pixels']) {
      const f = figFile(`${id}-vary-${level}.png`);
      const from = f?.step !== undefined ? [long, m].find((x) => x && x.steps === f.step) : null;
      const drawn = from ? ` (drawn from the ${(from.steps * from.batch).toLocaleString('en-US')}-image run)` : '';
      if (f) L.push(`Vary only the ${level} noise (each row holds the other levels' noise)${drawn}: ![${id} vary ${level}](figures/${f.file})\n`);
    }
  }
  L.push('');

  // Cross-check
  const checks = [
    ...Object.values(M),
    ...Object.values(data.long ?? {}).map((m) => ({ ...m, id: `${m.id} (longer run)` })),
    ...Object.values(data.sweep ?? {}).sort((a, b) => a.id.localeCompare(b.id, 'en', { numeric: true })).map((m) => ({ ...m, id: `${m.id} (500k sweep)` })),
  ].filter((m) => m.crossCheck);
  if (checks.length) {
    L.push('## Cross-check: the Node CLI (WebGPU) on the float16 files');
    L.push('');
    L.push('The shipped models, and the 500k Figure-4 sweep\'s runs whose weights were still on the machine when the check was added: the Node CLI reads the float16 file itself and evaluates the first n test images with the same noise as the twin (the sweep: its -ELBO, one posterior draw per image).');
    L.push('');
    L.push('| model | figure | n | k | Node CLI | twin | difference | within the standard error |');
    L.push('| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |');
    for (const m of checks) {
      const c = m.crossCheck;
      L.push(`| ${m.id} | ${c.figure} | ${c.n} | ${c.k ?? '—'} | ${c.value.toFixed(4)} | ${c.twin.toFixed(4)} | ${c.difference.toExponential(2)} | ${yes(c.agrees)} (${c.engine}) |`);
    }
    L.push('');
  }

  L.push('## Where this differs from the paper, and what does not hold');
  L.push('');
  // The shipped MNIST models trained past the page's budget (Table 1's and Figure 5's longer runs).
  const longMnist = Object.values(data.long ?? {}).filter((m) => !String(m.preset).startsWith('hier'));
  const longNote = longMnist.length ? ` (longer runs, shipped by the app: ${longMnist.map((m) => `${m.id} saw ${(m.steps * m.batch).toLocaleString('en-US')}`).join(', ')}; see their sections)` : '';
  L.push(`- Budget: ${mnist[0] ? (mnist[0].steps * mnist[0].batch).toLocaleString('en-US') : '?'} images per MNIST model${longNote} against the paper's 20 million (200k steps of batch 100): every model here is far from converged, and the ordering of close rows can change with more training.`);
  const ladderNote = ladders.map(({ r, at }) => `${r.model}: k = ${at.k} minus k = ${r.k.toLocaleString('en-US')} is ${at.minus_largest.mean.toFixed(2)} ± ${at.minus_largest.stderr.toFixed(2)} nats, paired on ${r.images.toLocaleString('en-US')} test images`);
  L.push(`- IS-NLL with k = ${anyIs?.k ?? '?'} instead of N = 5000: a looser bound (${ladderNote.length ? ladderNote.join('; ') : 'higher by a fraction of a nat to a few nats for models whose latent carries information'}${ladderNote.length ? '; see "How loose the IS-NLL is"' : ''}).`);
  L.push('- The test binarization is one fixed-seed draw from the grey levels, not the Larochelle binarized MNIST of the paper.');
  L.push('- The KL warm-up is 20% of the run instead of 10k of 200k steps (5%).');
  // Latents that carry (almost) nothing: the paper's point is that a PixelVAE's latent stays in use.
  const collapsed = Object.values(M).filter((m) => !String(m.preset).startsWith('hier') && fig(m, 'KL') && fig(m, 'KL').value < 0.5);
  const rmsKl = fig(data.long?.['fig5-pixelvae-2d-upsample'], 'KL');
  // The rms-tanh Figure-4 points recorded so far (the 500k sweep), named with their KL.
  const depthOf = (m) => Number(String(m.id).match(/-l(\d+)$/)?.[1]);
  const rmsSweep = Object.values(data.sweep ?? {}).filter((m) => /^fig4-gated-pixelvae-rms-l\d+$/.test(m.id) && fig(m, 'KL')).sort((a, b) => depthOf(a) - depthOf(b));
  const rmsUse = rmsSweep.length
    ? `; the 500,000-image Figure-4 sweep uses it too: ${rmsSweep.map((m) => `${m.id} (KL ${fig(m, 'KL').value.toFixed(2)})`).join(', ')}`
    : '; no Figure-4 or Table-1 row uses that option yet';
  if (collapsed.length) {
    L.push(`- Latents that carry under 0.5 nats at this budget (the decoder models the digits without them): ${collapsed.map((m) => `${m.id} (KL ${fig(m, 'KL').value.toFixed(2)})`).join(', ')}. The paper's PixelVAEs keep theirs in use; ours only in the models with z in every gate (Table 1's gated-pixelvae-cond, ${fig(M['table1-gated-pixelvae'], 'KL')?.value.toFixed(2) ?? '?'} nats, and the 2-D one)${rmsKl ? ` and in the upsampling one whose features are divided by their rms before the tanh (the 2-D Figure-5 model, ${rmsKl.value.toFixed(2)} nats${rmsUse})` : ''}.`);
    // Measured with scripts/latent-probe.py on the 50,000-image Figure-4 runs (docs/departures.md, row
    // "gated-pixelvae's decoder features"); said only while the rows shown are those runs.
    const probed = ['fig4-gated-pixelvae-l1', 'fig4-gated-pixelvae-l2', 'fig4-gated-pixelvae-l4'].map((id) => M[id]);
    if (probed.every((m) => m && collapsed.includes(m) && m.steps * m.batch === 50000)) L.push("  - Why, in the upsampling gated PixelVAEs: with 1, 2 or 4 PixelCNN layers the upsampling decoder's features grow until the tanh before the gated stacks is flat for about half of them, and the decoder stops reading z (replacing z by an unrelated draw moves the logits by under 0.03 on average, against logits of magnitude 4 to 5); with 8 or 12 layers the features stay small and the PixelCNN models the digits without z. The measurements are in docs/departures.md (row \"gated-pixelvae's decoder features\").");
  }
  // Judgements made by looking at the grids of one run each (by eye, not computed); each is kept only
  // while the grids shown are that run's.
  const shownRun = (id) => {
    const f = figFile(`${id}-vary-top.png`);
    return [data.long?.[id], M[id]].find((m) => m && (f?.step === undefined || m.steps === f.step)) ?? null;
  };
  const colourMnist = shownRun('hier-colour-mnist');
  if (colourMnist && colourMnist.steps * colourMnist.batch === 160000) {
    L.push('- hier-colour-mnist at 160,000 images (5,000 steps of batch 32; its 9,000 training images about 18 times over), judged by eye in its Figure-6 grids: varying only the top noise changes the background\'s colour and texture, and the digit with it; varying only the middle noise keeps a row\'s background and changes the digit\'s shape and colours; varying only the pixel noise keeps the digit and the background and changes the fine texture (in one row of four, patches of the background\'s colour as well). So the levels take separate roles, but not the paper\'s split exactly: here the top level holds the background and the middle level the digit. Many digits are blotchy, and some are not legible.');
  }
  const demo = shownRun('hier-demo');
  if (demo && demo.steps * demo.batch <= 30016) {
    L.push('- hier-demo, at 30,000 images, draws colour fields, not photographs: in its Figure-6 grids the rows that hold the top and middle noise share a palette and broad layout, but the separation the paper shows (top level: layout and colour; pixel noise: fine texture) is not there to judge.');
  }
  L.push('- To reproduce a row: its exact command is in `runs/zoo/<id>/run-1.command` and, for the shipped models trained at this budget, in public/models/manifest.json; `npm run zoo -- --images 20000000 --device cuda` is the paper\'s budget on a GPU.');
  L.push('');
  return `${L.join('\n')}\n`;
}

const fromJson = process.argv.includes('--from-json');
for (const a of process.argv.slice(2)) if (a !== '--from-json') {
  process.stderr.write(`results: unknown argument ${a} (--from-json)\n`);
  process.exit(2);
}
try {
  const data = fromJson ? readJson(DATA) : collect();
  if (!data) throw new Error(`${DATA} does not exist: run \`npm run results\` where runs/zoo holds the zoo's state`);
  mkdirSync(FIGS, { recursive: true });
  writeFileSync(PAGE, page(data));
  process.stderr.write(`results: wrote ${PAGE} (${Object.keys(data.models).length} models)\n`);
} catch (error) {
  process.stderr.write(`results: ${process.env.DEBUG ? error.stack : error.message}\n`);
  process.exit(1);
}
