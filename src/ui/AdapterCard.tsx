import type { AdapterInfo } from '../worker/client';

export function AdapterCard({ adapter }: { adapter: AdapterInfo }) {
  const rows: [string, string, string][] = [
    ['Vendor', adapter.vendor || 'not reported', 'adapter-vendor'],
    ['Architecture', adapter.architecture || 'not reported', 'adapter-architecture'],
  ];
  if (adapter.description) rows.push(['Description', adapter.description, 'adapter-description']);
  return (
    <section className="card" data-testid="adapter">
      <div className="card-title">
        <h2>WebGPU adapter</h2>
        <span className="badge badge-ok">Ready</span>
      </div>
      <dl className="facts">
        {rows.map(([label, value, id]) => (
          <div key={id}>
            <dt>{label}</dt>
            <dd data-testid={id}>{value}</dd>
          </div>
        ))}
        <div>
          <dt>Fallback (CPU) adapter</dt>
          <dd data-testid="adapter-fallback">{adapter.isFallbackAdapter ? 'yes' : 'no'}</dd>
        </div>
      </dl>
      {adapter.isFallbackAdapter && (
        <p className="note" data-testid="fallback-note">
          This adapter runs on the CPU. Results are correct but training will be very slow; use a browser with
          hardware WebGPU for real runs.
        </p>
      )}
    </section>
  );
}
