// A small SVG line chart (no dependency): several series over training steps, nice ticks, legend.
import { memo } from 'react';

export interface Series {
  name: string;
  colour: string;
  points: { x: number; y: number }[];
  dashed?: boolean;
  /** Draw a dot per point (sparse series such as validation bounds). */
  dots?: boolean;
}

const W = 520;
const H = 210;
const M = { left: 52, right: 12, top: 12, bottom: 30 };
const MAX_POINTS = 300;

function thin(points: { x: number; y: number }[]): { x: number; y: number }[] {
  const finite = points.filter((p) => Number.isFinite(p.y));
  if (finite.length <= MAX_POINTS) return finite;
  const stride = finite.length / MAX_POINTS;
  const out: { x: number; y: number }[] = [];
  for (let i = 0; i < MAX_POINTS; i++) out.push(finite[Math.floor(i * stride)]);
  out.push(finite[finite.length - 1]);
  return out;
}

function ticks(lo: number, hi: number, count = 4): number[] {
  const span = hi - lo || 1;
  const step0 = span / count;
  const mag = 10 ** Math.floor(Math.log10(step0));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => span / s <= count) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9 * span; v += step) out.push(Number(v.toPrecision(10)));
  return out;
}

function label(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e4) return `${(v / 1e3).toFixed(0)}k`;
  if (a >= 100) return v.toFixed(0);
  if (a >= 1) return String(Number(v.toFixed(1)));
  return String(Number(v.toPrecision(2)));
}

export const LineChart = memo(function LineChart({ title, series, yLabel, testId }: { title: string; series: Series[]; yLabel: string; testId?: string }) {
  const drawn = series.map((s) => ({ ...s, points: thin(s.points) }));
  const all = drawn.flatMap((s) => s.points);
  const empty = all.length === 0;
  let x0 = empty ? 0 : Math.min(...all.map((p) => p.x));
  let x1 = empty ? 1 : Math.max(...all.map((p) => p.x));
  let y0 = empty ? 0 : Math.min(...all.map((p) => p.y));
  let y1 = empty ? 1 : Math.max(...all.map((p) => p.y));
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) {
    y0 -= 1;
    y1 += 1;
  }
  const padY = (y1 - y0) * 0.06;
  y0 -= padY;
  y1 += padY;
  if (x0 > 0 && x0 < (x1 - x0) * 0.2) x0 = 0;
  const sx = (x: number) => M.left + ((x - x0) / (x1 - x0)) * (W - M.left - M.right);
  const sy = (y: number) => H - M.bottom - ((y - y0) / (y1 - y0)) * (H - M.top - M.bottom);
  const last = drawn.map((s) => s.points[s.points.length - 1]);
  return (
    <figure
      className="chart"
      data-testid={testId}
      data-points={all.length}
      data-first={drawn[0]?.points[0]?.y}
      data-last={drawn[0]?.points[drawn[0].points.length - 1]?.y}
    >
      <figcaption>
        <span className="chart-title">{title}</span>
        <span className="legend">
          {drawn.map((s, i) => (
            <span key={s.name} className="legend-item">
              <svg width="18" height="8" aria-hidden="true">
                <line x1="0" y1="4" x2="18" y2="4" stroke={s.colour} strokeWidth="2.5" strokeDasharray={s.dashed ? '4 3' : undefined} />
              </svg>
              {s.name}
              {last[i] && <strong className="legend-value">{label(last[i].y)}</strong>}
            </span>
          ))}
        </span>
      </figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} className="chart-svg" role="img" aria-label={title}>
        {ticks(y0, y1).map((t) => (
          <g key={`y${t}`}>
            <line x1={M.left} x2={W - M.right} y1={sy(t)} y2={sy(t)} className="grid-line" />
            <text x={M.left - 6} y={sy(t) + 4} textAnchor="end" className="tick">
              {label(t)}
            </text>
          </g>
        ))}
        {ticks(x0, x1, 5)
          .filter((t) => Number.isInteger(t))
          .map((t) => (
            <text key={`x${t}`} x={sx(t)} y={H - M.bottom + 16} textAnchor="middle" className="tick">
              {label(t)}
            </text>
          ))}
        <line x1={M.left} x2={W - M.right} y1={H - M.bottom} y2={H - M.bottom} className="axis" />
        <text x={W - M.right} y={H - 4} textAnchor="end" className="axis-label">
          step
        </text>
        <text x={12} y={M.top + 4} className="axis-label" transform={`rotate(-90 12 ${M.top + 4})`} textAnchor="end">
          {yLabel}
        </text>
        {drawn.map((s) =>
          s.points.length === 0 ? null : (
            <g key={s.name}>
              {s.points.length > 1 && (
                <polyline
                  fill="none"
                  stroke={s.colour}
                  strokeWidth="2"
                  strokeDasharray={s.dashed ? '5 4' : undefined}
                  points={s.points.map((p) => `${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join(' ')}
                />
              )}
              {(s.dots || s.points.length === 1) && s.points.map((p, i) => <circle key={i} cx={sx(p.x)} cy={sy(p.y)} r="3" fill={s.colour} />)}
            </g>
          ),
        )}
        {empty && (
          <text x={W / 2} y={H / 2} textAnchor="middle" className="empty">
            No data yet: start training
          </text>
        )}
      </svg>
    </figure>
  );
});
