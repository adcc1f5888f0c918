// Device acquisition, shared by the browser worker and Node. The caller supplies the GPU
// entry point (navigator.gpu in a browser, the `webgpu` package's create() in Node; see node.ts),
// so this module never imports anything platform-specific.

export interface AdapterSummary {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  isFallbackAdapter: boolean;
}

/** Raised when no usable WebGPU adapter or device can be had; the message says what to do. */
export class WebGpuUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WebGpuUnavailableError';
  }
}

/** Limits our kernels rely on; we ask for the adapter's maximum of each (defaults are smaller). */
const WANTED_LIMITS = [
  'maxStorageBuffersPerShaderStage',
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupsPerDimension',
] as const;

export function summarizeAdapter(adapter: GPUAdapter): AdapterSummary {
  const info = adapter.info;
  // isFallbackAdapter moved from GPUAdapter to GPUAdapterInfo in 2025; read either.
  const legacy = (adapter as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter;
  const fromInfo = (info as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter;
  const architecture = info?.architecture ?? '';
  return {
    vendor: info?.vendor ?? '',
    architecture,
    device: info?.device ?? '',
    description: info?.description ?? '',
    // Dawn in Node reports neither flag; SwiftShader and lavapipe are CPU fallbacks all the same.
    isFallbackAdapter:
      Boolean(fromInfo ?? legacy) || /swiftshader|llvmpipe|lavapipe/i.test(`${architecture} ${info?.description ?? ''} ${info?.device ?? ''}`),
  };
}

export interface AcquiredDevice {
  adapter: GPUAdapter;
  device: GPUDevice;
  summary: AdapterSummary;
}

export async function acquireDevice(gpu: GPU | undefined | null): Promise<AcquiredDevice> {
  if (!gpu) {
    throw new WebGpuUnavailableError(
      'WebGPU is not available here (navigator.gpu is missing). Use a recent Chrome, Edge or Firefox 141+ ' +
        'on a machine with a GPU; in Chromium without a GPU, start it with --enable-unsafe-webgpu. ' +
        'The page must be served from https:// or http://localhost.',
    );
  }
  let adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) adapter = await gpu.requestAdapter();
  if (!adapter) {
    throw new WebGpuUnavailableError(
      'WebGPU is present but no adapter was found. Update your GPU driver, or enable WebGPU in your ' +
        'browser (chrome://flags/#enable-unsafe-webgpu). In Node, install a Vulkan driver ' +
        '(Debian: apt-get install mesa-vulkan-drivers libvulkan1) or point VK_ICD_FILENAMES at one.',
    );
  }
  const requiredLimits: Record<string, number> = {};
  for (const name of WANTED_LIMITS) {
    const value = (adapter.limits as unknown as Record<string, number>)[name];
    if (typeof value === 'number') requiredLimits[name] = value;
  }
  const device = await adapter.requestDevice({ requiredLimits });
  return { adapter, device, summary: summarizeAdapter(adapter) };
}
