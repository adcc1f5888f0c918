// A progress bar with rate and ETA on stderr (a plain line per update when stderr is not a terminal).

export class Progress {
  private readonly start = performance.now();
  private lastDraw = 0;

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly unit = 'it',
  ) {}

  update(done: number, note = ''): void {
    const now = performance.now();
    const finished = done >= this.total;
    if (!finished && now - this.lastDraw < (process.stderr.isTTY ? 200 : 5000)) return;
    this.lastDraw = now;
    const elapsed = (now - this.start) / 1000;
    const rate = done / Math.max(elapsed, 1e-9);
    const eta = rate > 0 ? (this.total - done) / rate : Infinity;
    const width = 24;
    const filled = Math.round((width * Math.min(done, this.total)) / Math.max(this.total, 1));
    const bar = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
    const line = `${this.label} ${bar} ${done}/${this.total} ${rate.toFixed(rate < 10 ? 2 : 0)} ${this.unit}/s ETA ${formatSeconds(eta)}${note ? `  ${note}` : ''}`;
    if (process.stderr.isTTY) process.stderr.write(`\r${line}\x1b[K${finished ? '\n' : ''}`);
    else process.stderr.write(`${line}\n`);
  }
}

export function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '--';
  if (s < 60) return `${s.toFixed(0)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.round((s % 3600) / 60)).padStart(2, '0')}m`;
}
