// Every op of the engine, forward and backward. One module per family.
export * from './elementwise';
export * from './reduce';
export * from './shape';
export * from './matmul';
export * from './gather';
export * from './softmax';
export * from './random';
export * from './gaussian';
export * from './norm';
export * from './conv';
export * from './loss';
export { chooseConvVariants, convVariantReport, memoryStore, type ConvVariantReport } from './conv-variants';
