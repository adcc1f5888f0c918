// The bind-group cache of GpuContext (src/gpu/bind-cache.ts): a dispatch over buffers that went back
// to the pool and came out again reads what they hold now, a dispatch with the same buffers in other
// roles gets its own bind group, buffers the pool destroys leave no bind group behind, and a repeated
// training step creates no bind group once warm.
import { beforeAll, describe, expect, it } from 'vitest';
import type { KernelSpec } from '../src/gpu/context';
import { GpuImageSet } from '../src/data/gpu-dataset';
import type { ImageSet } from '../src/data/mnist';
import { stepSetupConfig } from '../src/bench/steps';
import { MnistModel } from '../src/models/mnist-model';
import { MnistTrainer } from '../src/models/trainer';
import { useGpu } from './support/gpu';

beforeAll(useGpu);

/** out[i] = in[i] * 2 + add, with `add` from the params uniform (so a wrong dynamic offset shows). */
const TWICE: KernelSpec = {
  name: 'test-twice',
  entry: 'main',
  bindings: ['read', 'rw'],
  code: /* wgsl */ `
struct Params { n: u32, add: f32 }
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  if (id.x < params.n) { dst[id.x] = src[id.x] * 2.0 + params.add; }
}`,
};

const f32Bits = (v: number): number => new Uint32Array(Float32Array.of(v).buffer)[0];

async function twice(src: GPUBuffer, dst: GPUBuffer, n: number, add: number): Promise<number[]> {
  const gpu = await useGpu();
  gpu.dispatch(TWICE, [src, dst], [n, f32Bits(add)], [1]);
  return Array.from(new Float32Array(await gpu.read(dst, n * 4)));
}

/** Returns both buffers to the pool and makes them reusable (release waits for the next submit). */
async function releaseAll(buffers: GPUBuffer[]): Promise<void> {
  const gpu = await useGpu();
  for (const b of buffers) gpu.pool.release(b);
  gpu.flush();
  gpu.pool.afterSubmit();
}

describe('bind-group cache', () => {
  it('the pool hands a step the buffers of the step before, but never one released since the last submit', async () => {
    const gpu = await useGpu();
    const bytes = 7 * 1024 + 12;
    await gpu.sync(); // a step boundary: requests count from here
    const a = gpu.pool.acquire(bytes);
    const b = gpu.pool.acquire(bytes);
    await releaseAll([a, b]);
    await gpu.sync();
    // The same requests again: the same buffers in the same order (plain LIFO would swap them).
    const a2 = gpu.pool.acquire(bytes);
    const b2 = gpu.pool.acquire(bytes);
    expect(a2).toBe(a);
    expect(b2).toBe(b);
    // Released but not yet submitted: still possibly read by recorded commands, so not handed out
    // even where the history asks for it.
    await releaseAll([a2]);
    gpu.pool.release(b2);
    gpu.pool.mark();
    const a3 = gpu.pool.acquire(bytes);
    const b3 = gpu.pool.acquire(bytes);
    expect(a3).toBe(a);
    expect(b3).not.toBe(b);
    await releaseAll([a3, b3]);
  });

  it('reads a reused pool buffer through its cached bind group with the new contents, and keys by role', async () => {
    const gpu = await useGpu();
    // A size class of its own, so the pool hands back exactly these two buffers.
    const bytes = 3 * 1024 + 4;
    const a = gpu.pool.acquire(bytes);
    const b = gpu.pool.acquire(bytes);
    gpu.write(a, Float32Array.of(1, 2, 3, 4));
    expect(await twice(a, b, 4, 0)).toEqual([2, 4, 6, 8]);

    // Both go back to the pool and come out again for new owners with new contents.
    await releaseAll([a, b]);
    const first = gpu.pool.acquire(bytes);
    const second = gpu.pool.acquire(bytes);
    expect(new Set([first, second])).toEqual(new Set([a, b]));
    gpu.write(a, Float32Array.of(10, 20, 30, 40));
    gpu.write(b, Float32Array.of(-1, -1, -1, -1));
    const s0 = gpu.stats();
    // Same buffers in the same roles: the cached bind group, reading what `a` holds now.
    expect(await twice(a, b, 4, 0.5)).toEqual([20.5, 40.5, 60.5, 80.5]);
    const s1 = gpu.stats();
    expect(s1.bindGroupsCreated - s0.bindGroupsCreated).toBe(0);
    expect(s1.bindGroupHits - s0.bindGroupHits).toBe(1);

    // The same two buffers with their roles swapped must not hit the (a -> b) bind group: a cache
    // keyed by anything coarser than buffer identity in binding order (sizes, usage) would write b
    // here instead of a and leave a unchanged.
    gpu.write(b, Float32Array.of(7, 8, 9, 10));
    expect(await twice(b, a, 4, 0)).toEqual([14, 16, 18, 20]);
    const s2 = gpu.stats();
    expect(s2.bindGroupsCreated - s1.bindGroupsCreated).toBe(1);
    expect(Array.from(new Float32Array(await gpu.read(b, 16)))).toEqual([7, 8, 9, 10]);

    // Many dispatches in one batch share a bind group but each reads its own params slot.
    for (let i = 0; i < 3; i++) gpu.dispatch(TWICE, [b, a], [4, f32Bits(i * 100)], [1]);
    expect(Array.from(new Float32Array(await gpu.read(a, 16)))).toEqual([214, 216, 218, 220]);
    await releaseAll([a, b]);
    gpu.checkHealth();
  });

  it('drops the bind groups of buffers the pool destroys, and new buffers of that size work', async () => {
    const gpu = await useGpu();
    const bytes = 5 * 1024 + 8;
    const a = gpu.pool.acquire(bytes);
    const b = gpu.pool.acquire(bytes);
    gpu.write(a, Float32Array.of(1, 1, 1, 1));
    expect(await twice(a, b, 4, 1)).toEqual([3, 3, 3, 3]);
    expect(gpu.bindGroupsOver(a)).toBe(1);
    expect(gpu.bindGroupsOver(b)).toBe(1);
    const cached = gpu.stats().bindGroupsCached;

    await releaseAll([a, b]);
    expect(gpu.bindGroupsOver(a)).toBe(1); // idle in the pool: still the same buffer, kept
    gpu.pool.trim(); // destroys a and b
    expect(gpu.bindGroupsOver(a)).toBe(0);
    expect(gpu.bindGroupsOver(b)).toBe(0);
    expect(gpu.stats().bindGroupsCached).toBeLessThan(cached);

    // The same size class now comes from fresh buffers; dispatches over them are valid and correct.
    const c = gpu.pool.acquire(bytes);
    const d = gpu.pool.acquire(bytes);
    expect(c).not.toBe(a);
    expect(c).not.toBe(b);
    gpu.write(c, Float32Array.of(5, 6, 7, 8));
    expect(await twice(c, d, 4, 0)).toEqual([10, 12, 14, 16]);
    await releaseAll([c, d]);
    gpu.checkHealth();
  });

  it('a repeated training step creates no bind groups once warm', async () => {
    const gpu = await useGpu();
    const config = stepSetupConfig('tiny');
    const count = 64;
    const pixels = config.imageSize * config.imageSize;
    const images = new Uint8Array(count * pixels);
    for (let i = 0; i < images.length; i++) images[i] = (i * 2654435761) >>> 24;
    const set: ImageSet = { name: 'synthetic', count, height: config.imageSize, width: config.imageSize, images, labels: new Uint8Array(count) };
    const model = new MnistModel(config);
    const data = GpuImageSet.upload(set, 'intensity');
    const trainer = new MnistTrainer(model, data, { batchSize: 8, seed: 3 });
    // Every step through the engine's dispatch(): a replayed step looks no bind group up at all.
    trainer.replaySteps = false;
    try {
      await trainer.prewarm();
      // The first steps still settle (which buffer each request gets); the loop crosses an epoch (8 steps).
      for (let i = 0; i < 5; i++) {
        trainer.trainStep();
        await gpu.throttle();
      }
      await gpu.sync();
      const s0 = gpu.stats();
      const steps = 6;
      for (let i = 0; i < steps; i++) {
        trainer.trainStep();
        await gpu.throttle();
      }
      await gpu.sync();
      const s1 = gpu.stats();
      const dispatches = s1.dispatches - s0.dispatches;
      expect(dispatches).toBeGreaterThan(100 * steps);
      expect(s1.bindGroupsCreated - s0.bindGroupsCreated).toBe(0);
      expect(s1.bindGroupHits - s0.bindGroupHits).toBe(dispatches);
      gpu.checkHealth();
    } finally {
      trainer.dispose();
      trainer.optimizer.dispose();
      data.dispose();
      model.dispose();
    }
  });
});
