// A 2-D view of higher-dimensional latent codes: the first two principal components (power
// iteration with deflation on the dim x dim covariance; dim is small, so this is cheap on the CPU).

export function project2d(points: Float32Array, count: number, dim: number): Float32Array {
  const mean = new Float64Array(dim);
  for (let i = 0; i < count; i++) for (let j = 0; j < dim; j++) mean[j] += points[i * dim + j] / count;
  const cov = new Float64Array(dim * dim);
  for (let i = 0; i < count; i++) {
    for (let a = 0; a < dim; a++) {
      const da = points[i * dim + a] - mean[a];
      for (let b = a; b < dim; b++) cov[a * dim + b] += (da * (points[i * dim + b] - mean[b])) / count;
    }
  }
  for (let a = 0; a < dim; a++) for (let b = 0; b < a; b++) cov[a * dim + b] = cov[b * dim + a];
  const components: Float64Array[] = [];
  for (let c = 0; c < 2; c++) {
    let v = new Float64Array(dim).map((_, j) => 1 + 0.01 * j * (c + 1));
    let lambda = 0;
    for (let iter = 0; iter < 200; iter++) {
      const w = new Float64Array(dim);
      for (let a = 0; a < dim; a++) for (let b = 0; b < dim; b++) w[a] += cov[a * dim + b] * v[b];
      const norm = Math.hypot(...w);
      if (!(norm > 0)) break;
      lambda = norm;
      v = w.map((x) => x / norm);
    }
    components.push(v);
    for (let a = 0; a < dim; a++) for (let b = 0; b < dim; b++) cov[a * dim + b] -= lambda * v[a] * v[b];
  }
  const out = new Float32Array(count * 2);
  for (let i = 0; i < count; i++) {
    for (let c = 0; c < 2; c++) {
      let s = 0;
      for (let j = 0; j < dim; j++) s += (points[i * dim + j] - mean[j]) * components[c][j];
      out[2 * i + c] = s;
    }
  }
  return out;
}
