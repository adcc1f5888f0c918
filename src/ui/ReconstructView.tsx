// Reconstructions of test images and of the user's own images (file picker or drag-and-drop, several
// at once): the preprocessed input the model actually sees beside sampled reconstructions. For the
// colour model, changing which level is kept reconstructs the same images again, so the rows always
// match the label.
import { useState, type DragEvent } from 'react';
import { useLab } from '../state/lab';
import { engine, transfer, type ReconstructionRow, type UploadedFile } from '../worker/client';
import { CollapseHint } from './CollapseHint';
import { ImageGrid } from './ImageGrid';

type Level = 'top' | 'middle';
type Source = { kind: 'test'; offset: number } | { kind: 'upload'; files: File[] };
const LEVEL_WORDS: Record<Level, string> = { middle: 'keeping z1', top: 'keeping z2' };

export function ReconstructView() {
  const model = useLab((s) => s.model);
  const phase = useLab((s) => s.phase);
  const seed = useLab((s) => s.sampleSeed);
  const reportError = useLab((s) => s.reportError);
  const [rows, setRows] = useState<ReconstructionRow[]>([]);
  const [errors, setErrors] = useState<{ name: string; message: string }[]>([]);
  const [busy, setBusy] = useState<string | null>(null);
  const [offset, setOffset] = useState(0);
  const [dragging, setDragging] = useState(false);
  const samples = 4;
  const colour = model?.channels === 3;
  const [level, setLevel] = useState<Level>('middle');
  /** What the rows shown were made from, and with which kept level. */
  const [source, setSource] = useState<Source | null>(null);
  const [rowsLevel, setRowsLevel] = useState<Level>('middle');
  const disabled = !model || phase === 'loading' || phase === 'faulted' || busy !== null;

  if (model && !model.hasLatent) {
    return (
      <div className="view" data-testid="reconstruct-view">
        <p className="muted">This preset has no latent code, so there is nothing to reconstruct from. Choose a VAE or PixelVAE preset.</p>
      </div>
    );
  }

  const testImages = async (next: number, keep: Level = level): Promise<void> => {
    setBusy('Reconstructing test images…');
    try {
      setRows(await engine().reconstructTest({ count: colour ? 4 : 8, samples, seed, offset: next, ...(colour ? { level: keep } : {}) }));
      setErrors([]);
      setOffset(next);
      setSource({ kind: 'test', offset: next });
      setRowsLevel(keep);
    } catch (error) {
      reportError('Reconstruction failed', error);
    } finally {
      setBusy(null);
    }
  };

  const upload = async (list: FileList | File[], keep: Level = level): Promise<void> => {
    const files = Array.from(list);
    if (files.length === 0) return;
    setBusy(`Reading ${files.length} file${files.length > 1 ? 's' : ''}…`);
    try {
      const payload: UploadedFile[] = [];
      const tooBig: { name: string; message: string }[] = [];
      for (const f of files) {
        // Refuse huge files before reading them into memory.
        if (f.size > 20 * 1024 * 1024) tooBig.push({ name: f.name, message: `the file is ${(f.size / 1048576).toFixed(1)} MB; images up to 20.0 MB are accepted` });
        else payload.push({ name: f.name, type: f.type, bytes: await f.arrayBuffer() });
      }
      setBusy('Reconstructing your images…');
      const result = await engine().reconstructUploads(transfer(payload, payload.map((p) => p.bytes)), { samples, seed, ...(colour ? { level: keep } : {}) });
      setRows(result.rows);
      setErrors([...tooBig, ...result.errors]);
      setSource({ kind: 'upload', files });
      setRowsLevel(keep);
    } catch (error) {
      reportError('Reconstruction failed', error);
    } finally {
      setBusy(null);
    }
  };

  const onDrop = (e: DragEvent<HTMLDivElement>): void => {
    e.preventDefault();
    setDragging(false);
    if (!disabled && e.dataTransfer.files.length > 0) void upload(e.dataTransfer.files);
  };

  return (
    <div className="view" data-testid="reconstruct-view">
      <div className="toolbar">
        <button type="button" disabled={disabled} onClick={() => void testImages(offset)} data-testid="reconstruct-test">
          {colour ? 'Reconstruct held-out images' : 'Reconstruct test images'}
        </button>
        <button type="button" className="secondary" disabled={disabled} onClick={() => void testImages(offset + (colour ? 4 : 8))}>
          Next {colour ? 4 : 8}
        </button>
        {colour && (
          <label className="field inline">
            <span>Keep</span>
            <select
              value={level}
              disabled={busy !== null}
              onChange={(e) => {
                const keep = e.currentTarget.value as Level;
                setLevel(keep);
                // Rows on screen were made with the other level: make them again with this one.
                if (source?.kind === 'test') void testImages(source.offset, keep);
                else if (source?.kind === 'upload') void upload(source.files, keep);
              }}
              data-testid="recon-level"
            >
              <option value="middle">z1 (middle): regenerate the pixels</option>
              <option value="top">z2 (top): regenerate z1 and the pixels</option>
            </select>
          </label>
        )}
        {busy && <span className="muted small">{busy}</span>}
      </div>
      <CollapseHint consequence="the reconstructions are samples that ignore the input image" />
      <div
        className={`dropzone${dragging ? ' dragging' : ''}`}
        data-testid="dropzone"
        onDragOver={(e) => {
          e.preventDefault();
          setDragging(true);
        }}
        onDragLeave={() => setDragging(false)}
        onDrop={onDrop}
      >
        <p>
          <strong>Your own images:</strong> drop them here or{' '}
          <label className="link-button">
            choose files
            <input type="file" accept="image/*" multiple hidden disabled={disabled} data-testid="upload-input" onChange={(e) => {
              const files = e.currentTarget.files ? Array.from(e.currentTarget.files) : [];
              e.currentTarget.value = '';
              void upload(files);
            }} />
          </label>
          .{' '}
          {colour
            ? `Any common format and size. Each is centre-cropped to a square and resized to ${model?.imageSize}x${model?.imageSize} colour, as the model sees it.`
            : `Any common format and size; a dark digit on a light background works best. Each is converted to ${model?.imageSize ?? 28}x${model?.imageSize ?? 28} grayscale, inverted if its background is light, and binarized.`}
        </p>
      </div>
      {errors.length > 0 && (
        <div className="notice notice-error" data-testid="upload-errors" role="alert">
          <div className="notice-body">
            <strong>{errors.length === 1 ? 'One file could not be used' : `${errors.length} files could not be used`}</strong>
            <ul>
              {errors.map((e) => (
                <li key={e.name}>
                  <code>{e.name}</code>: {e.message}
                </li>
              ))}
            </ul>
          </div>
        </div>
      )}
      {rows.length > 0 && (
        <table className="recon-table" data-testid="reconstructions">
          <thead>
            <tr>
              <th scope="col">Image</th>
              <th scope="col">Model input</th>
              <th scope="col" data-testid="recon-header" data-level={colour ? rowsLevel : undefined}>
                {samples} sampled reconstructions{colour ? `, ${LEVEL_WORDS[rowsLevel]}` : ''}
                {colour && rowsLevel !== level ? ' (updating…)' : ''}
              </th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r, i) => (
              <tr key={`${r.label}-${i}`} data-testid="reconstruction-row">
                <td className="small">
                  <div className="recon-label">{r.label}</div>
                  <div className="muted">{r.note}</div>
                </td>
                <td>
                  <ImageGrid batch={r.input} columns={1} cell={56} testId="recon-input" label={`input ${r.label}`} />
                </td>
                <td>
                  <ImageGrid batch={r.samples} columns={samples} cell={56} testId="recon-samples" label={`reconstructions of ${r.label}`} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
