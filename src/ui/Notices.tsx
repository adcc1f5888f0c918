import { useLab } from '../state/lab';

export function Notices() {
  const notices = useLab((s) => s.notices);
  const dismiss = useLab((s) => s.dismiss);
  if (notices.length === 0) return null;
  return (
    <div className="notices" aria-live="polite">
      {notices.map((n) => (
        <div key={n.id} className={`notice notice-${n.kind}`} data-testid={`notice-${n.kind}`} role={n.kind === 'error' ? 'alert' : 'status'}>
          <div className="notice-body">
            <strong>{n.title}</strong>
            {n.message && <p className="notice-message">{n.message}</p>}
          </div>
          <div className="notice-actions">
            {n.action && (
              <button type="button" onClick={() => n.action!.run()}>
                {n.action.label}
              </button>
            )}
            <button type="button" className="ghost" aria-label="Dismiss" onClick={() => dismiss(n.id)}>
              ✕
            </button>
          </div>
        </div>
      ))}
    </div>
  );
}
