// The conv variant choice remembered in Node: a JSON file under the OS cache directory
// ($XDG_CACHE_HOME or ~/.cache on Linux, ~/Library/Caches on macOS, %LOCALAPPDATA% on Windows).
// Kept out of conv-variants.ts so the browser bundle never imports node:fs.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir, platform } from 'node:os';
import { join } from 'node:path';
import type { VariantStore } from './conv-variants';

export function cacheDir(): string {
  if (process.env.XDG_CACHE_HOME) return process.env.XDG_CACHE_HOME;
  if (platform() === 'darwin') return join(homedir(), 'Library', 'Caches');
  if (platform() === 'win32' && process.env.LOCALAPPDATA) return process.env.LOCALAPPDATA;
  return join(homedir(), '.cache');
}

/** A store backed by one JSON object file; unreadable or unwritable files behave as empty / not remembered. */
export function fileStore(path = join(cacheDir(), 'pixelvae-lab', 'conv-variants.json')): VariantStore {
  const read = (): Record<string, string> => {
    try {
      const v = JSON.parse(readFileSync(path, 'utf8')) as unknown;
      return v && typeof v === 'object' ? (v as Record<string, string>) : {};
    } catch {
      return {};
    }
  };
  return {
    get: (k) => {
      const v = read()[k];
      return typeof v === 'string' ? v : null;
    },
    set: (k, v) => {
      try {
        const all = read();
        all[k] = v;
        mkdirSync(join(path, '..'), { recursive: true });
        writeFileSync(path, JSON.stringify(all, null, 1));
      } catch {
        // read-only home: not remembered
      }
    },
  };
}
