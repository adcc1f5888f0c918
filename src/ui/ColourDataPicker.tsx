// The colour model's data set: the bundled demo photos, colour-MNIST, or the user's own folder of images, zip or
// CIFAR-10 .bin batches (picked or dropped). The worker decodes and checks them; skipped files are
// listed by name, and a choice with no usable image is refused with the reason.
import { useRef, useState, type DragEvent } from 'react';
import { useLab } from '../state/lab';

/** Every file under a dropped folder (DataTransfer entries), with its path as the name. */
async function filesOf(entry: FileSystemEntry, path = ''): Promise<File[]> {
  if (entry.isFile) {
    const file = await new Promise<File>((resolve, reject) => (entry as FileSystemFileEntry).file(resolve, reject));
    return [new File([file], `${path}${file.name}`, { type: file.type })];
  }
  const reader = (entry as FileSystemDirectoryEntry).createReader();
  const all: File[] = [];
  for (;;) {
    const batch = await new Promise<FileSystemEntry[]>((resolve, reject) => reader.readEntries(resolve, reject));
    if (batch.length === 0) break;
    for (const e of batch) if (!e.name.startsWith('.')) all.push(...(await filesOf(e, `${path}${entry.name}/`)));
  }
  return all;
}

export function ColourDataPicker({ locked }: { locked: boolean }) {
  const draft = useLab((s) => s.draft);
  const files = useLab((s) => s.colourFiles);
  const busy = useLab((s) => s.colourBusy);
  const error = useLab((s) => s.colourError);
  const load = useLab((s) => s.loadColourFiles);
  const setDraft = useLab((s) => s.setDraft);
  const [dragging, setDragging] = useState(false);
  const picker = useRef<HTMLInputElement>(null);
  const folder = useRef<HTMLInputElement>(null);
  if (!draft) return null;
  const source = draft.data ?? 'demo';
  const disabled = locked || busy !== null;

  const onDrop = async (e: DragEvent<HTMLDivElement>): Promise<void> => {
    e.preventDefault();
    setDragging(false);
    if (disabled) return;
    const entries = Array.from(e.dataTransfer.items)
      .map((item) => item.webkitGetAsEntry?.())
      .filter((x): x is FileSystemEntry => !!x);
    const list = entries.length > 0 ? (await Promise.all(entries.map((x) => filesOf(x)))).flat() : Array.from(e.dataTransfer.files);
    void load(list);
  };

  return (
    <div className="colour-data" data-testid="colour-data">
      <div className="radio-row">
        <label className="check">
          <input type="radio" name="colour-source" checked={source === 'demo'} disabled={locked} onChange={() => setDraft({ data: 'demo' })} data-testid="data-demo" />
          Demo photos (bundled)
        </label>
        <label className="check" title="MNIST digits in random colours and textures (generated at install time)">
          <input type="radio" name="colour-source" checked={source === 'colour-mnist'} disabled={locked} onChange={() => setDraft({ data: 'colour-mnist' })} data-testid="data-colour-mnist" />
          Colour-MNIST (generated)
        </label>
        <label className="check">
          <input type="radio" name="colour-source" checked={source === 'files'} disabled={locked || !files} onChange={() => setDraft({ data: 'files' })} data-testid="data-files" />
          Your images
        </label>
      </div>
      <div
        className={`dropzone compact${dragging ? ' dragging' : ''}`}
        data-testid="colour-dropzone"
        onDragOver={(e) => {
          e.preventDefault();
          setDragging(true);
        }}
        onDragLeave={() => setDragging(false)}
        onDrop={(e) => void onDrop(e)}
      >
        <p className="small">
          Drop a folder, a zip or CIFAR-10 <code>.bin</code> batches here, or{' '}
          <button type="button" className="link-button" disabled={disabled} onClick={() => picker.current?.click()} data-testid="colour-choose-files">
            choose files
          </button>{' '}
          /{' '}
          <button type="button" className="link-button" disabled={disabled} onClick={() => folder.current?.click()} data-testid="colour-choose-folder">
            a folder
          </button>
          . Images are centre-cropped and resized to {draft.sizes.imageSize}x{draft.sizes.imageSize}; 10% are held out (CIFAR-10&rsquo;s test_batch.bin when given).
        </p>
        <input
          ref={picker}
          type="file"
          multiple
          hidden
          accept="image/*,.zip,.bin,application/zip"
          data-testid="colour-files-input"
          onChange={(e) => {
            const list = e.currentTarget.files ? Array.from(e.currentTarget.files) : [];
            e.currentTarget.value = '';
            void load(list);
          }}
        />
        <input
          ref={folder}
          type="file"
          hidden
          {...({ webkitdirectory: '', directory: '' } as Record<string, string>)}
          data-testid="colour-folder-input"
          onChange={(e) => {
            const list = e.currentTarget.files ? Array.from(e.currentTarget.files) : [];
            e.currentTarget.value = '';
            void load(list);
          }}
        />
      </div>
      {busy && <p className="muted small">{busy}</p>}
      {error && (
        <p className="inline-error small" data-testid="colour-error" role="alert">
          {error}
        </p>
      )}
      {files && (
        <div className="small" data-testid="colour-files">
          <p>
            <strong>{files.images.toLocaleString('en-US')} images</strong> from {files.files} file{files.files === 1 ? '' : 's'}
            {source === 'files' ? ' (in use)' : ' (not in use)'}.
          </p>
          {files.skipped.length > 0 && (
            <details className="skipped" open data-testid="colour-skipped">
              <summary>
                {files.skipped.length} file{files.skipped.length === 1 ? '' : 's'} skipped
              </summary>
              <ul>
                {files.skipped.slice(0, 20).map((s, i) => (
                  <li key={`${s.name}-${i}`}>
                    <code>{s.name}</code>: {s.reason}
                  </li>
                ))}
                {files.skipped.length > 20 && <li>… and {files.skipped.length - 20} more</li>}
              </ul>
            </details>
          )}
        </div>
      )}
    </div>
  );
}
