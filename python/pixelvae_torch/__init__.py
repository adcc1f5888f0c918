"""PixelVAE Lab's PyTorch twin: the same models, checkpoints and data as the TypeScript/WebGPU engine,
for long and distributed training runs. See README "Training at scale"."""
