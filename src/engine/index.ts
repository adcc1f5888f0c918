// The engine's public surface: tensors, scopes, autograd and ops.
import { installAutogradHelpers } from './autograd';
import { add, fill } from './ops/elementwise';

installAutogradHelpers({ fill, add });

export * from './tensor';
export { grad, gradTarget, noGrad, param, record, recordMany } from './autograd';
export * from './ops';
export { weightNormMany, weightNormGroupSizes, type WeightNormPair } from './ops/norm-multi';
export { weightNormArena, WeightNormArenaPlan } from './ops/norm-arena';
export * from './optim';
export { f32Word } from './kernels';
export { ArenaLayout, TensorArena, sliceAlignment } from './arena';
