import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './ui/App';
import './ui/styles.css';
import { engine } from './worker/client';

// Test hooks for fault handling (?debug=1 only): poison the parameters or destroy the GPU device.
if (new URLSearchParams(window.location.search).has('debug')) {
  (window as unknown as { __pixelvae: unknown }).__pixelvae = { fault: (kind: 'nan' | 'device-lost') => engine().debugFault(kind) };
}

const root = document.getElementById('root');
if (!root) throw new Error('index.html has no #root element');
createRoot(root).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
