// The engine's public surface: tensors, scopes, autograd and ops.
import { installAutogradHelpers } from './autograd';
import { add, fill } from './ops/elementwise';

installAutogradHelpers({ fill, add });

export * from './tensor';
export { grad, noGrad, param, record } from './autograd';
export * from './ops';
export * from './optim';
