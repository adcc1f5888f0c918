export function NoWebGpu({ reason, message }: { reason: 'no-navigator-gpu' | 'no-adapter'; message: string }) {
  return (
    <section className="card card-warn" data-testid="no-webgpu">
      <h2>WebGPU is not available here</h2>
      <p>
        PixelVAE Lab trains models on your GPU through WebGPU, and{' '}
        {reason === 'no-navigator-gpu'
          ? 'this browser does not offer WebGPU to the page.'
          : 'this browser offers WebGPU but found no usable GPU adapter.'}
      </p>
      <h3>How to get it</h3>
      <ul className="steps">
        <li>
          Use a recent <strong>Chrome</strong> or <strong>Edge</strong> (Windows, macOS, ChromeOS, Android),{' '}
          <strong>Firefox 141+</strong> (Windows; newer versions on more platforms), or <strong>Safari 26</strong> (macOS,
          iOS, iPadOS).
        </li>
        <li>
          On <strong>Linux</strong>, Chrome may need WebGPU switched on: open <code>chrome://flags/#enable-unsafe-webgpu</code>,
          enable it and restart the browser (keep the GPU driver up to date).
        </li>
        <li>
          Open the app over <strong>https://</strong> or from <strong>http://localhost</strong>: browsers only offer
          WebGPU to secure pages.
        </li>
        <li>If WebGPU is switched on and this still appears, your GPU or driver may be blocklisted: update the driver.</li>
      </ul>
      <details>
        <summary>Details</summary>
        <pre className="message" data-testid="no-webgpu-message">{message}</pre>
      </details>
    </section>
  );
}
