/**
 * Starts the live service: checks the options and the config, listens at once (GET /health says
 * 503 until the model is loaded), loads the model, starts the streams.
 *
 * @example
 * const service = await startService({ streams: [{ id: 'gate', source: 'rtsp://cam/1', lines: ['0,400,1280,400:gate'] }] });
 * console.log(service.url); // http://127.0.0.1:8080
 * await service.close();
 */
import os from 'node:os';
import { Detector } from '../detector.js';
import { DeimError } from '../errors.js';
import { FrameBatcher } from './batcher.js';
import { checkConfig, readConfigFile } from './config.js';
import { openHttp } from './http.js';
import { Service, type ServiceOptions } from './service.js';

export async function startService(options: ServiceOptions = {}): Promise<Service> {
  const service = new Service(options);
  const batch = options.batch ?? 1;
  if (!Number.isInteger(batch) || batch < 1 || batch > 1024) throw new DeimError('ERR_INVALID_ARGUMENT', `--batch must be an integer from 1 to 1024, got ${batch}`);
  const timeoutMs = options.batchTimeoutMs ?? 10;
  if (!(timeoutMs >= 0 && timeoutMs <= 60_000)) throw new DeimError('ERR_INVALID_ARGUMENT', `--batch-timeout-ms must be from 0 to 60000, got ${timeoutMs}`);
  // The config is checked before anything starts (classes once the model is known).
  const context = { allowDirs: service.allowDirs };
  const configured = [...(options.config ? await readConfigFile(options.config, context) : []), ...checkConfig({ streams: options.streams ?? [] }, context)];
  const ids = new Set<string>();
  configured.forEach((s, i) => {
    if (ids.has(s.id)) throw new DeimError('ERR_INVALID_ARGUMENT', `streams[${i}].id: "${s.id}" is used by another stream`, { input: s.id });
    ids.add(s.id);
  });
  await openHttp(service, options.host ?? '127.0.0.1', options.port ?? 8080);
  try {
    service.detector = await (options.loadDetector ?? ((o) => Detector.create(o)))({ ...options.detector, batch });
    const runners = service.detector.stats().runners;
    service.batcher = new FrameBatcher(service.detector, {
      batch,
      timeoutMs,
      // CPU: enough batches in detection to keep every pool worker busy; TensorRT: one being filled while one runs.
      maxInFlight: Math.max(2, service.detector.layout === 'gpu' ? 2 : 2 * Math.min(runners, os.availableParallelism())),
      onBatch: (n) => service.metrics.batchSize.observe(n),
    });
    service.log(`${service.detector.spec.variant ?? service.detector.modelPath} on ${service.detector.backendLabel} (${service.detector.description}), batch ${batch}, listening on ${service.url}`);
    configured.forEach(({ live: _live, ...s }, i) => service.add(service.check(s, `streams[${i}]`)));
  } catch (e) {
    await service.close();
    throw e;
  }
  return service;
}
