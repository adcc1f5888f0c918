import type { OpCheck } from '../worker/client';

/** Five decimals, without trailing zeros (0.5, not 0.50000). */
const fmt = (x: number) => String(Number(x.toFixed(5)));

export function OpCheckCard({ op }: { op: OpCheck }) {
  return (
    <section className="card" data-testid="op-check">
      <div className="card-title">
        <h2>Engine check</h2>
        {op.matches ? (
          <span className="badge badge-ok" data-testid="op-verdict">Matches float64 reference</span>
        ) : (
          <span className="badge badge-bad" data-testid="op-verdict">Does not match the reference</span>
        )}
      </div>
      <p>A first computation on the GPU through the engine's kernels:</p>
      <p>
        <code data-testid="op-expression">{op.expression}</code>
      </p>
      <div className="table-wrap">
        <table className="values">
          <thead>
            <tr>
              <th scope="col">i</th>
              <th scope="col">a</th>
              <th scope="col">b</th>
              <th scope="col">y (GPU)</th>
              <th scope="col">y (float64)</th>
            </tr>
          </thead>
          <tbody>
            {op.values.map((y, i) => (
              <tr key={i}>
                <td className="muted">{i}</td>
                <td>{fmt(op.inputs.a[i])}</td>
                <td>{fmt(op.inputs.b[i])}</td>
                <td data-testid={`op-value-${i}`}>{fmt(y)}</td>
                <td className="muted">{fmt(op.expected.values[i])}</td>
              </tr>
            ))}
          </tbody>
          <tfoot>
            <tr>
              <th scope="row" colSpan={3}>
                total = Σ y
              </th>
              <td data-testid="op-total">{fmt(op.total)}</td>
              <td className="muted">{fmt(op.expected.total)}</td>
            </tr>
          </tfoot>
        </table>
      </div>
      <p className="muted small">
        Largest relative error {op.maxRelativeError.toExponential(1)}; {op.milliseconds.toFixed(0)} ms including pipeline
        creation and readback.
      </p>
    </section>
  );
}
