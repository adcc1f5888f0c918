// One GPU context per test file, on whatever adapter Dawn finds (lavapipe or SwiftShader here).
import { GpuContext } from '../../src/gpu/context';
import { acquireDevice } from '../../src/gpu/device';
import { nodeGpu } from '../../src/gpu/node';
import { hasEngine, initEngine, engine } from '../../src/engine';

let context: GpuContext | null = null;

export async function useGpu(): Promise<GpuContext> {
  if (!context) {
    context = new GpuContext(await acquireDevice(nodeGpu()));
    initEngine(context);
  }
  if (!hasEngine()) initEngine(context);
  return engine().gpu;
}
