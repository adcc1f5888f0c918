// Our engine on the E.1 model, for the framework comparison: the MnistModel and MnistTrainer the app
// trains with (as src/bench/cases.ts trainCase), its parameters exported for the twins, and the same
// loss on a given batch for the equality check.
import * as E from '../../engine';
import { GpuContext } from '../../gpu/context';
import { acquireDevice } from '../../gpu/device';
import { GpuImageSet } from '../../data/gpu-dataset';
import { MnistModel } from '../../models/mnist-model';
import { MnistTrainer } from '../../models/trainer';
import type { MnistModelConfig } from '../../models/config';
import { paramShapes } from './spec';
import { syntheticDigits } from '../synthetic';

export class Ours {
  private trainer: MnistTrainer | null = null;
  private data: GpuImageSet | null = null;
  private x: E.Tensor | null = null;
  private noise: E.Tensor | null = null;

  private constructor(readonly gpu: GpuContext, readonly model: MnistModel) {}

  static async create(config: MnistModelConfig): Promise<Ours> {
    const gpu = new GpuContext(await acquireDevice(navigator.gpu));
    E.initEngine(gpu);
    return new Ours(gpu, new MnistModel(config));
  }

  /** Throws unless our parameters are spec.ts's list, name by name and shape by shape. */
  checkShapes(): void {
    const ours = this.model.params.entriesList().map(([name, t]) => `${name} [${t.shape.join(',')}]`).sort();
    const spec = paramShapes(this.model.config).map((p) => `${p.name} [${p.shape.join(',')}]`).sort();
    const missing = spec.filter((s) => !ours.includes(s));
    const extra = ours.filter((s) => !spec.includes(s));
    if (missing.length || extra.length) throw new Error(`spec.ts differs from our model: only in spec: ${missing.join('; ') || '-'}; only in ours: ${extra.join('; ') || '-'}`);
  }

  async exportValues(): Promise<Map<string, Float32Array>> {
    const values = new Map<string, Float32Array>();
    for (const [name, t] of this.model.params.entriesList()) values.set(name, Float32Array.from(await t.data()));
    return values;
  }

  setBatch(x: Float32Array, noise: Float32Array, batch: number): void {
    const s = this.model.config.imageSize;
    this.x = E.keep(E.fromArray(x, [batch, 1, s, s]));
    this.noise = E.keep(E.fromArray(noise, [batch, this.model.config.latentDim]));
  }

  /** The mean negative ELBO (alpha = 1) of the batch set by setBatch. */
  async loss(): Promise<number> {
    const t = E.noGrad(() => E.tidy(() => E.keep(this.model.loss(this.x!, this.noise!, 1).loss)));
    const [value] = await t.data();
    t.dispose();
    return value;
  }

  /** One forward pass (the -ELBO of the batch), no gradients, nothing read back. */
  forward(): void {
    E.noGrad(() => E.tidy(() => void this.model.loss(this.x!, this.noise!, 1)));
  }

  /** Makes the trainer (packs the parameters) and compiles its pipelines. */
  async prepareTraining(batch: number): Promise<void> {
    this.data = GpuImageSet.upload(syntheticDigits(1024, this.model.config.imageSize), 'intensity');
    this.trainer = new MnistTrainer(this.model, this.data, { batchSize: batch, seed: 1 });
    await this.trainer.prewarm();
  }

  async trainStep(): Promise<void> {
    this.trainer!.trainStep();
    // As trainCase: keeps the queue from running far ahead (no readback of results).
    await this.gpu.throttle();
  }

  async drain(): Promise<void> {
    await this.gpu.sync();
  }

  dispose(): void {
    this.trainer?.dispose();
    this.trainer?.optimizer.dispose();
    this.data?.dispose();
    this.x?.dispose();
    this.noise?.dispose();
    this.model.dispose();
  }
}
