/** `startService` from 'deimv2/serve' in process: the same service as `deimv2 serve`. */
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { startService } from '../dist/serve/index.js';
import { EXAMPLE, MODEL_DIR } from './helpers/paths.js';

it('starts on a free port, answers, and closes', async () => {
  const service = await startService({ port: 0, detector: { modelDir: MODEL_DIR }, log: () => {} });
  try {
    expect(service.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const health = await (await fetch(`${service.url}/health`)).json();
    expect(health).toMatchObject({ status: 'ok', model: 'atto', backend: 'cpu', streams: 0 });
    expect(await (await fetch(`${service.url}/v1/streams`)).json()).toEqual({ streams: [] });
    const r = await fetch(`${service.url}/v1/detect`, { method: 'POST', headers: { 'Content-Type': 'image/jpeg' }, body: readFileSync(EXAMPLE) });
    expect((await r.json()).detections.length).toBeGreaterThan(0);
    const missing = await fetch(`${service.url}/v1/streams/nope/frame.jpg`);
    expect(missing.status).toBe(404);
  } finally {
    await service.close();
  }
  await expect(fetch(`${service.url}/health`)).rejects.toThrow();
}, 60_000);

it('refuses a non-loopback address without a key, and a short key', async () => {
  await expect(startService({ host: '0.0.0.0', port: 0 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', message: expect.stringContaining('needs an API key') });
  await expect(startService({ port: 0, apiKey: 'short' })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', message: expect.stringContaining('at least 8 characters') });
});
