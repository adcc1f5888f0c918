// WebGPU in Node through Dawn (the `webgpu` npm package). Only Node entry points import this file
// (tests, the command line, benchmarks); the browser build never sees it.
import { existsSync } from 'node:fs';
import { create, globals } from 'webgpu';

/** Vulkan drivers that work on a GPU-less Debian machine, fastest first. */
export const CPU_VULKAN_DRIVERS = [
  '/usr/share/vulkan/icd.d/lvp_icd.json', // Mesa lavapipe (Mesa 25 from bookworm-backports)
  '/usr/lib/chromium/vk_swiftshader_icd.json', // SwiftShader shipped with Debian's chromium
];

let cached: GPU | null = null;

/**
 * The Node GPU entry point. PIXELVAE_VULKAN_ICD (or VK_ICD_FILENAMES) picks a Vulkan driver. With
 * neither set, a machine with a GPU device node keeps the system's loader search (real GPUs); a
 * machine without one gets the first CPU driver we know works, so tests run with no GPU.
 */
export function nodeGpu(): GPU {
  if (cached) return cached;
  const chosen = process.env.PIXELVAE_VULKAN_ICD;
  if (chosen) process.env.VK_ICD_FILENAMES = chosen;
  const hasGpuDevice = existsSync('/dev/dri/renderD128') || existsSync('/dev/nvidia0');
  if (!process.env.VK_ICD_FILENAMES && !hasGpuDevice) {
    const fallback = CPU_VULKAN_DRIVERS.find((path) => existsSync(path));
    if (fallback) process.env.VK_ICD_FILENAMES = fallback;
  }
  Object.assign(globalThis, globals);
  cached = create([]) as GPU;
  return cached;
}
