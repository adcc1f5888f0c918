// The GPU layer: pool size classes and deferred release, the pipeline cache, prewarm, errors.
import { describe, expect, it } from 'vitest';
import { GpuContext, GpuError, DeviceLostError } from '../src/gpu/context';
import { acquireDevice } from '../src/gpu/device';
import { nodeGpu } from '../src/gpu/node';
import { sizeClass } from '../src/gpu/pool';
import * as E from '../src/engine';
import { useGpu } from './support/gpu';

describe('size classes', () => {
  it('round up with bounded waste', () => {
    expect(sizeClass(1)).toBe(256);
    expect(sizeClass(4096)).toBe(4096);
    for (const bytes of [4097, 10_000, 123_457, 3_000_001]) {
      const c = sizeClass(bytes);
      expect(c).toBeGreaterThanOrEqual(bytes);
      expect(c / bytes).toBeLessThan(1.126);
      expect(c % 4).toBe(0);
    }
  });
});

describe('GpuContext', () => {
  it('reuses a released buffer only after the next submit', async () => {
    const gpu = await useGpu();
    const a = gpu.pool.acquire(1000);
    gpu.pool.release(a);
    const b = gpu.pool.acquire(1000);
    expect(b).not.toBe(a); // not yet submitted: a may still be read by recorded commands
    gpu.flush();
    gpu.pool.afterSubmit();
    const c = gpu.pool.acquire(1000);
    expect(c).toBe(a);
    gpu.pool.release(b);
    gpu.pool.release(c);
    expect(() => gpu.pool.release(c)).toThrow(/released twice/);
  });

  it('compiles each kernel variant once, and prewarm collects variants without running them', async () => {
    const gpu = await useGpu();
    const x = E.fromArray([1, 2, 3], [3]);
    const compiled = await gpu.prewarm(() => E.tidy(() => { E.softsign(E.exp(x)); }));
    expect(compiled).toBe(2);
    const before = gpu.stats().pipelines;
    const y = E.softsign(E.exp(x));
    expect(gpu.stats().pipelines).toBe(before); // nothing new to compile
    const values = await y.toArray();
    expect(values[2]).toBeCloseTo(Math.exp(3) / (1 + Math.exp(3)), 5);
    expect(await gpu.prewarm(() => E.tidy(() => { E.softsign(E.exp(x)); }))).toBe(0);
  });

  it('replays captured dispatches on the buffers they bound (the bench host floor)', async () => {
    const gpu = await useGpu();
    const x = E.keep(E.fromArray([1, -2, 3, 4, 5], [5]));
    let y: E.Tensor | null = null;
    const list = gpu.captureDispatches(() => {
      y = E.tidy(() => E.keep(E.neg(E.exp(x))));
    });
    expect(list.length).toBe(2);
    const first = await y!.toArray();
    [1, -2, 3, 4, 5].forEach((v, i) => expect(first[i]).toBeCloseTo(-Math.exp(v), 3));
    // New input values, then the same two dispatches again: y follows x.
    E.writeValues(x, new Float32Array([0, 1, 0, 1, 0]));
    const before = gpu.stats().dispatches;
    gpu.replayDispatches(list);
    expect(gpu.stats().dispatches - before).toBe(2);
    const got = await y!.toArray();
    [0, 1, 0, 1, 0].forEach((v, i) => expect(got[i]).toBeCloseTo(-Math.exp(v), 5));
    expect(() => gpu.captureDispatches(() => gpu.captureDispatches(() => undefined))).toThrow(/already capturing/);
    x.dispose();
    y!.dispose();
  });

  it('reports a WebGPU validation error with its message', async () => {
    const gpu = await useGpu();
    const bad = { name: 'broken.wgsl', code: 'this is not WGSL', entry: 'main', bindings: [] as const };
    gpu.dispatch(bad, [], [], [1]);
    await expect(gpu.sync()).rejects.toThrow(GpuError);
    // The context recovers: later work runs.
    expect(await E.fromArray([5], [1]).toArray()).toEqual([5]);
  });

  it('says clearly when the device is gone', async () => {
    const own = new GpuContext(await acquireDevice(nodeGpu()));
    const buffer = own.pool.acquire(16);
    own.device.destroy();
    await new Promise((r) => setTimeout(r, 50));
    await expect(own.read(buffer, 16)).rejects.toThrow(DeviceLostError);
  });
});
