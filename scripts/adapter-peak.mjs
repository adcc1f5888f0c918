// What a CPU adapter's compute shaders pay for: GFLOP/s of one kernel whose body is 8 vec4
// multiply-adds on registers, alone and with one extra cost per iteration. docs/performance.md uses it
// to explain the conv kernels' shape on SwiftShader (loads and loop iterations, not arithmetic).
//
//   node scripts/adapter-peak.mjs [mode ...]     (PIXELVAE_VULKAN_ICD picks the Vulkan driver, as the bench)
//   regs          8 vec4 multiply-adds from registers
//   load-uniform  + one load per iteration whose address is the same for a whole workgroup
//   load-lane     + one load per iteration whose address differs per thread
//   load-lane4    + four such loads
//   load-spread4  + four loads per thread whose addresses are 8 apart between neighbouring threads
//                 (the conv kernels' layout: each thread owns 8 consecutive positions)
//   inner-loop    the same work as regs, as an inner loop of 4 iterations
//   shared-uniform  + one load per iteration from workgroup memory, the same address for a whole workgroup
//   shared-lane4  + four loads per thread from workgroup memory, addresses 8 apart between threads
//   regs16        16 vec4 multiply-adds from registers on 16 accumulators (register pressure)
//   fma           regs with WGSL's fma() instead of a * b + c
//   branch-inside   regs inside an if in the loop whose (data-dependent) condition always holds
//   branch-outside  the same if around the whole loop
import { create, globals } from 'webgpu';

const MODES = ['regs', 'load-uniform', 'load-lane', 'load-lane4', 'load-spread4', 'inner-loop', 'shared-uniform', 'shared-lane4', 'regs16', 'fma', 'branch-inside', 'branch-outside'];
const modes = process.argv.slice(2).length ? process.argv.slice(2) : MODES;
for (const m of modes) {
  if (!MODES.includes(m)) {
    console.error(`adapter-peak: unknown mode ${m} (one of ${MODES.join(', ')})`);
    process.exit(2);
  }
}
if (process.env.PIXELVAE_VULKAN_ICD) process.env.VK_ICD_FILENAMES = process.env.PIXELVAE_VULKAN_ICD;
Object.assign(globalThis, globals);
// Kept in a variable: Dawn's instance must outlive the adapter (a temporary one crashes Node at exit).
const gpu = create([]);
const adapter = await gpu.requestAdapter();
if (!adapter) {
  console.error('adapter-peak: no WebGPU adapter (is a Vulkan driver installed? see scripts/ensure-system-deps.sh)');
  process.exit(1);
}
const device = await adapter.requestDevice();

const ITER = 4096;
const THREADS = 64 * 512;
const body = 'a0 += x * w; a1 += x * w; a2 += x * w; a3 += x * w; a4 += x * w; a5 += x * w; a6 += x * w; a7 += x * w;';
const extra = {
  regs: '',
  'load-uniform': 'w = src[(wid.x + i) & 1023u];',
  'load-lane': 'x.x = src[(gid.x + i) & 1023u];',
  'load-lane4': 'x = vec4<f32>(src[(gid.x + i) & 1023u], src[(gid.x + i + 1u) & 1023u], src[(gid.x + i + 2u) & 1023u], src[(gid.x + i + 3u) & 1023u]);',
  'load-spread4': 'x = vec4<f32>(src[(8u * gid.x + i) & 1023u], src[(8u * gid.x + i + 1u) & 1023u], src[(8u * gid.x + i + 2u) & 1023u], src[(8u * gid.x + i + 3u) & 1023u]);',
  'shared-uniform': 'w = tile[(wid.x + i) & 1023u];',
  'shared-lane4': 'x = vec4<f32>(tile[(8u * lid.x + i) & 1023u], tile[(8u * lid.x + i + 1u) & 1023u], tile[(8u * lid.x + i + 2u) & 1023u], tile[(8u * lid.x + i + 3u) & 1023u]);',
  regs16: '',
  fma: '',
};
const bodyFma = [0, 1, 2, 3, 4, 5, 6, 7].map((k) => `a${k} = fma(x, vec4<f32>(w), a${k});`).join(' ');
const body16 = `${body} b0 += x * w; b1 += x * w; b2 += x * w; b3 += x * w; b4 += x * w; b5 += x * w; b6 += x * w; b7 += x * w;`;

function shader(mode) {
  // inner-loop: each outer step runs 4 inner steps of the body, and the outer loop steps by 4.
  const loop = mode === 'inner-loop'
    ? `for (var i = 0u; i < ${ITER}u; i += 4u) { for (var j = 0u; j < 4u; j++) { x.y = x.y + 1.0; ${body} } }`
    : mode === 'branch-inside' ? `for (var i = 0u; i < ${ITER}u; i++) { if (w < 1e30) { ${body} } }`
    : mode === 'branch-outside' ? `if (w < 1e30) { for (var i = 0u; i < ${ITER}u; i++) { ${body} } }`
    : `for (var i = 0u; i < ${ITER}u; i++) { ${extra[mode] ?? ''} ${mode === 'regs16' ? body16 : mode === 'fma' ? bodyFma : body} }`;
  return `
@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
var<workgroup> tile: array<f32, 1024>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  for (var t = lid.x; t < 1024u; t += 64u) { tile[t] = src[t]; }
  workgroupBarrier();
  var a0 = vec4<f32>(f32(gid.x)); var a1 = a0 + 1.0; var a2 = a0 + 2.0; var a3 = a0 + 3.0;
  var a4 = a0 + 4.0; var a5 = a0 + 5.0; var a6 = a0 + 6.0; var a7 = a0 + 7.0;
  var x = vec4<f32>(src[gid.x & 1023u], 0.5, 0.25, 0.125);
  var w = src[(gid.x + 7u) & 1023u];
  var b0 = a0 - 1.0; var b1 = a1 - 1.0; var b2 = a2 - 1.0; var b3 = a3 - 1.0;
  var b4 = a4 - 1.0; var b5 = a5 - 1.0; var b6 = a6 - 1.0; var b7 = a7 - 1.0;
  ${loop}
  let s = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + b0 + b1 + b2 + b3 + b4 + b5 + b6 + b7;
  dst[gid.x] = s.x + s.y + s.z + s.w;
}`;
}

const src = device.createBuffer({ size: 4096, usage: GPUBufferUsage.STORAGE });
const dst = device.createBuffer({ size: THREADS * 4, usage: GPUBufferUsage.STORAGE });
const info = adapter.info ?? {};
for (const mode of modes) {
  const pipeline = await device.createComputePipelineAsync({ layout: 'auto', compute: { module: device.createShaderModule({ code: shader(mode) }), entryPoint: 'main' } });
  const bindGroup = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: src } }, { binding: 1, resource: { buffer: dst } }] });
  const run = async () => {
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(THREADS / 64);
    pass.end();
    device.queue.submit([encoder.finish()]);
    await device.queue.onSubmittedWorkDone();
  };
  await run(); // compiles
  const t0 = performance.now();
  await run();
  await run();
  const ms = (performance.now() - t0) / 2;
  const flops = THREADS * ITER * (mode === 'regs16' ? 16 : 8) * 4 * 2;
  console.log(JSON.stringify({ adapter: `${info.vendor ?? '?'} ${info.architecture || info.description || '?'}`, mode, ms: +ms.toFixed(1), gflops: +(flops / ms / 1e6).toFixed(2) }));
}
process.exit(0);
