/**
 * The service's HTTP API (fastify), JSON everywhere:
 *   GET /health, GET /metrics, GET /
 *   GET|POST /v1/streams, GET|DELETE /v1/streams/:id
 *   GET /v1/streams/:id/events (Server-Sent Events: the `detect --json` JSON-lines record of each frame)
 *   GET /v1/streams/:id/frame.jpg, GET /v1/streams/:id/mjpeg (multipart/x-mixed-replace)
 *   POST /v1/detect (image bytes -> one entry of `detect --json`'s results, through the batcher)
 * With an API key every call that changes something needs `Authorization: Bearer KEY` (401).
 */
import { createServer, type ServerResponse } from 'node:http';
import Fastify, { type FastifyReply } from 'fastify';
import { requireSharp } from '../cjs.js';
import { DeimError, errorMessage } from '../errors.js';
import { parseJsonBounded } from '../input/limits.js';
import type { RgbImage } from '../image/types.js';
import { frameRecord } from '../video/jsonl.js';
import { PAGE_HTML } from './page.js';
import { redactText } from './redact.js';
import type { Service } from './service.js';

const IMAGE_TYPES = ['image/jpeg', 'image/png', 'image/webp'];
const BOUNDARY = 'deimv2frame';
/** Largest JSON body (a stream's config). */
const MAX_JSON_BYTES = 1024 * 1024;
/** POST /v1/detect images waiting for the detector at once. */
const MAX_WAITING_IMAGES = 64;

const STATUS: Partial<Record<DeimError['code'], number>> = {
  ERR_INVALID_ARGUMENT: 400, ERR_INPUT_FORMAT: 400, ERR_INPUT_EMPTY: 400, ERR_INPUT_UNREADABLE: 400, ERR_INPUT_TOO_LARGE: 413,
  ERR_INPUT_NOT_ALLOWED: 400, ERR_INPUT_NOT_FOUND: 400, ERR_VIDEO_SOURCE: 400, ERR_CLOSED: 503, ERR_INPUT_TIMEOUT: 400,
};

function sendError(reply: FastifyReply, service: Service, e: unknown, fallback = 500) {
  const code = e instanceof DeimError ? e.code : 'ERR_INTERNAL';
  const status = e instanceof DeimError ? (STATUS[e.code] ?? fallback) : fallback;
  const message = redactText(errorMessage(e), [...service.streams.values()].map((s) => s.config.source));
  return reply.code(status).send({ error: { code, message } });
}

/** JPEG of an RGB frame. */
export function encodeJpeg(image: RgbImage): Promise<Buffer> {
  return requireSharp()(image.data, { raw: { width: image.width, height: image.height, channels: 3 } }).jpeg({ quality: 80 }).toBuffer();
}

/** One JPEG per frame, made only when someone looks (frame.jpg, MJPEG), shared by every viewer. */
class JpegCache {
  private frame = -1;
  private jpeg: Promise<Buffer> | undefined;
  private image: RgbImage | undefined;
  get(frame: number, image: RgbImage): Promise<Buffer> {
    if (this.frame !== frame || this.image !== image || !this.jpeg) {
      this.frame = frame;
      this.image = image;
      this.jpeg = encodeJpeg(image);
    }
    return this.jpeg;
  }
}

interface Client {
  res: ServerResponse;
  done: Promise<void>;
  end(): void;
  /**
   * Whether the client is too far behind to be sent more now: its response holds more than the
   * backlog limit (the frame is dropped for it and counted); held there for slowClientMs, it is
   * closed (counted). Memory per client is bounded by the limit plus one message.
   */
  behind(count?: boolean): boolean;
}

function hijack(service: Service, reply: FastifyReply, stream: string, headers: Record<string, string>): Client {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, { 'Cache-Control': 'no-cache, no-store', Connection: 'keep-alive', 'X-Accel-Buffering': 'no', ...headers });
  // Headers now: an MJPEG view of a stream with no frame yet is answered at once, not when a frame comes.
  res.flushHeaders();
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  let overSince: number | undefined;
  const client = {
    stream,
    buffered: () => res.writableLength,
    end: () => {
      service.clients.delete(client);
      if (!res.writableEnded) res.end();
      resolveDone();
    },
  };
  service.clients.add(client);
  res.on('close', client.end);
  const behind = (count = true): boolean => {
    if (res.destroyed || res.writableEnded) return true;
    if (res.writableLength <= service.maxClientBacklogBytes) {
      overSince = undefined;
      return false;
    }
    const now = performance.now();
    overSince ??= now;
    if (now - overSince >= service.slowClientMs) {
      service.metrics.clientsClosed.inc({ stream });
      service.log(`a client of stream ${stream} read nothing for ${Math.round((now - overSince) / 1000)} s with ${res.writableLength} bytes waiting: closed`);
      res.destroy(); // drops what it holds now ('close' ends the client)
    } else if (count) service.metrics.clientDropped.inc({ stream });
    return true;
  };
  return { res, done, end: client.end, behind };
}

/** The 415 message of a route: what it takes, and what came. */
function wrongType(url: string, contentType: string | undefined): string {
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase() || 'none';
  return url.split('?')[0] === '/v1/detect'
    ? `POST /v1/detect takes image bytes with Content-Type ${IMAGE_TYPES.join(', ')}, got ${type}`
    : `this call takes JSON (Content-Type application/json), got ${type}`;
}

function tooLargeMessage(contentType: string | undefined, maxImageBytes: number): string {
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  return IMAGE_TYPES.includes(type) ? `the image is larger than the limit of ${maxImageBytes} bytes` : `the body is larger than the limit of ${MAX_JSON_BYTES} bytes for JSON`;
}

/** Whether a request carries a body (its arrival is timed). */
function hasBody(headers: Record<string, string | string[] | undefined>): boolean {
  return headers['content-length'] !== undefined ? headers['content-length'] !== '0' : headers['transfer-encoding'] !== undefined;
}

export async function openHttp(service: Service, host: string, port: number): Promise<void> {
  const timeout = service.requestTimeoutMs;
  const app = Fastify({
    logger: false,
    bodyLimit: MAX_JSON_BYTES,
    forceCloseConnections: true,
    // Node's own limits are the backstop of the body timer below (headers that never end, too).
    // keepAliveTimeout as fastify sets it on its own servers (72 s; Node's default is 5 s): clients
    // (undici: 4 s) then always drop an idle socket before the server does, so a request is never
    // sent on a socket the server is closing (ECONNRESET on a loaded machine).
    serverFactory: (handler) => createServer({ requestTimeout: timeout + 5000, headersTimeout: timeout + 5000, keepAliveTimeout: 72_000, connectionsCheckingInterval: Math.min(30_000, Math.max(250, timeout / 4)) }, handler),
    // What Node refuses before any route (headers too slow, a malformed request) gets the API's JSON error too.
    clientErrorHandler: (error: NodeJS.ErrnoException, socket) => {
      if (error.code === 'ECONNRESET' || error.code === 'EPIPE' || !socket.writable) return socket.destroy();
      const slow = error.code === 'ERR_HTTP_REQUEST_TIMEOUT';
      const tooLarge = error.code === 'HPE_HEADER_OVERFLOW';
      const [status, code, message] = slow
        ? ['408 Request Timeout', 'ERR_INPUT_TIMEOUT', `the request did not arrive within ${timeout + 5000} ms`]
        : tooLarge
          ? ['431 Request Header Fields Too Large', 'ERR_INPUT_TOO_LARGE', 'the request headers are larger than the limit']
          : ['400 Bad Request', 'ERR_INVALID_ARGUMENT', `not an HTTP request this service reads (${error.code ?? error.message})`];
      const body = JSON.stringify({ error: { code, message } });
      socket.end(`HTTP/1.1 ${status}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    },
  });
  const jpegs = new Map<string, JpegCache>();
  const jpegOf = (id: string) => {
    let c = jpegs.get(id);
    if (!c) jpegs.set(id, (c = new JpegCache()));
    return c;
  };

  // A body that trickles in (a client sending a byte a second) is cut off: 408 JSON, then the connection is closed.
  app.addHook('onRequest', (request, reply, next) => {
    if (!hasBody(request.headers)) return next();
    const timer = setTimeout(() => {
      const res = reply.raw;
      if (res.headersSent || res.destroyed) return;
      const body = JSON.stringify({ error: { code: 'ERR_INPUT_TIMEOUT', message: `the request body did not arrive within ${timeout} ms (${request.method} ${request.url.split('?')[0]})` } });
      res.writeHead(408, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body), Connection: 'close' });
      res.end(body, () => request.raw.socket?.destroy());
    }, timeout);
    timer.unref();
    const clear = () => clearTimeout(timer);
    request.raw.once('end', clear);
    request.raw.once('close', clear);
    reply.raw.once('finish', clear);
    next();
  });
  // Images being received or waiting for the detector are bounded (each may be maxImageBytes).
  let detecting = 0;
  app.addHook('onRequest', async (request, reply) => {
    if (request.method !== 'POST' || request.url.split('?')[0] !== '/v1/detect') return;
    if (detecting >= MAX_WAITING_IMAGES) {
      return reply.code(503).header('Retry-After', '1').send({ error: { code: 'ERR_BUSY', message: `${MAX_WAITING_IMAGES} images are being received or detected already; try again` } });
    }
    detecting++;
    reply.raw.once('close', () => detecting--);
  });
  // JSON bodies: bounded nesting, and a syntax error said as one (not as a refused key); "__proto__" and
  // "constructor" keys are plain own keys here, which the field checks refuse by name.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: MAX_JSON_BYTES }, (_req, body, done) => {
    try {
      done(null, body === '' ? undefined : parseJsonBounded(body as string, 'the request body', { maxDepth: 16 }));
    } catch (e) {
      done(e as Error, undefined);
    }
  });
  app.addContentTypeParser(IMAGE_TYPES, { parseAs: 'buffer', bodyLimit: service.maxImageBytes }, (_req, body, done) => done(null, body));
  app.addHook('onRequest', async (request, reply) => {
    if (['GET', 'HEAD', 'OPTIONS'].includes(request.method)) return;
    if (!service.authorized(request.headers.authorization)) {
      return reply.code(401).header('WWW-Authenticate', 'Bearer').send({ error: { code: 'ERR_UNAUTHORIZED', message: 'this call needs Authorization: Bearer <API key>' } });
    }
  });
  app.setErrorHandler((error: Error & { statusCode?: number; code?: string }, request, reply) => {
    if (error instanceof DeimError) return sendError(reply, service, error);
    const status = error.statusCode && error.statusCode >= 400 && error.statusCode < 600 ? error.statusCode : 500;
    const code = status === 413 ? 'ERR_INPUT_TOO_LARGE' : status === 415 ? 'ERR_INPUT_FORMAT' : status < 500 ? 'ERR_INVALID_ARGUMENT' : 'ERR_INTERNAL';
    const message = status === 415 ? wrongType(request.url, request.headers['content-type']) : status === 413 ? tooLargeMessage(request.headers['content-type'], service.maxImageBytes) : error.message;
    return reply.code(status).send({ error: { code, message } });
  });
  app.setNotFoundHandler((request, reply) => reply.code(404).send({ error: { code: 'ERR_NOT_FOUND', message: `no route ${request.method} ${request.url.split('?')[0]}` } }));

  app.get('/', async (_request, reply) => reply.type('text/html; charset=utf-8').send(PAGE_HTML));
  app.get('/health', async (_request, reply) => {
    const d = service.detector;
    if (!d || service.stopping) return reply.code(503).send({ status: service.stopping ? 'stopping' : 'loading' });
    return { status: 'ok', model: d.spec.variant ?? d.modelPath, backend: d.backendLabel, streams: service.streams.size };
  });
  app.get('/metrics', async (_request, reply) => reply.type(service.metrics.registry.contentType).send(await service.metrics.text()));

  const tooMany = (reply: FastifyReply) => {
    if (service.clients.size < service.maxClients) return false;
    void reply.code(503).header('Retry-After', '5').send({ error: { code: 'ERR_BUSY', message: `${service.clients.size} event and MJPEG clients are connected, the limit; try again later` } });
    return true;
  };
  const found = (id: string, reply: FastifyReply) => {
    const s = service.streams.get(id);
    if (!s) void reply.code(404).send({ error: { code: 'ERR_NOT_FOUND', message: `no stream "${id}"` } });
    return s;
  };
  app.get('/v1/streams', async () => ({ streams: [...service.streams.values()].map((s) => s.info()) }));
  app.get<{ Params: { id: string } }>('/v1/streams/:id', async (request, reply) => found(request.params.id, reply)?.info());
  app.post('/v1/streams', async (request, reply) => {
    const type = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/json') {
      return reply.code(415).send({ error: { code: 'ERR_INPUT_FORMAT', message: wrongType(request.url, type) } });
    }
    if (!service.detector) return reply.code(503).send({ error: { code: 'ERR_CLOSED', message: 'the model is still loading' } });
    const runner = service.add(service.check(request.body));
    return reply.code(201).send(runner.info());
  });
  app.delete<{ Params: { id: string } }>('/v1/streams/:id', async (request, reply) => {
    if (!(await service.remove(request.params.id))) return reply.code(404).send({ error: { code: 'ERR_NOT_FOUND', message: `no stream "${request.params.id}"` } });
    jpegs.delete(request.params.id);
    return reply.code(204).send();
  });

  app.get<{ Params: { id: string } }>('/v1/streams/:id/events', async (request, reply) => {
    const id = request.params.id;
    if (!found(id, reply)) return reply;
    if (tooMany(reply)) return reply;
    const { res, done, behind } = hijack(service, reply, id, { 'Content-Type': 'text/event-stream; charset=utf-8' });
    res.write(': deimv2 events\n\n');
    const off = service.listen(id, (frame) => {
      if (behind()) return;
      res.write(`id: ${frame.frame}\ndata: ${JSON.stringify(frameRecord(frame))}\n\n`);
    });
    // A comment now and then keeps proxies from closing the connection while a stream reconnects (and closes a client stuck behind).
    const heartbeat = setInterval(() => behind(false) || res.write(': ping\n\n'), 15_000);
    await done;
    clearInterval(heartbeat);
    off();
    return reply;
  });

  app.get<{ Params: { id: string } }>('/v1/streams/:id/frame.jpg', async (request, reply) => {
    const s = found(request.params.id, reply);
    if (!s) return reply;
    const latest = s.latestImage();
    if (!latest) return reply.code(404).send({ error: { code: 'ERR_NOT_FOUND', message: `stream "${s.id}" has no frame yet (state ${s.state})` } });
    const jpeg = await jpegOf(s.id).get(latest.frame.frame, latest.image);
    return reply.type('image/jpeg').header('Cache-Control', 'no-store').header('X-Frame', String(latest.frame.frame)).send(jpeg);
  });

  app.get<{ Params: { id: string } }>('/v1/streams/:id/mjpeg', async (request, reply) => {
    const s = found(request.params.id, reply);
    if (!s) return reply;
    if (tooMany(reply)) return reply;
    const { res, done, behind } = hijack(service, reply, s.id, { 'Content-Type': `multipart/x-mixed-replace; boundary=${BOUNDARY}` });
    let busy = false;
    const send = (frame: number, image: RgbImage | undefined) => {
      if (busy || !image || behind()) return; // the newest frame wins; a slow viewer skips frames
      // Kept: the frame's pixels stay as they are while the JPEG is made (not reused for a later frame).
      s.keep(image);
      busy = true;
      jpegOf(s.id).get(frame, image).then(
        (jpeg) => {
          busy = false;
          if (res.writableEnded || res.destroyed) return;
          res.write(`--${BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: ${jpeg.length}\r\n\r\n`);
          res.write(jpeg);
          res.write('\r\n');
        },
        () => (busy = false),
      );
    };
    const latest = s.latestImage();
    if (latest) send(latest.frame.frame, latest.image);
    const off = service.listen(s.id, (frame, image) => send(frame.frame, image));
    await done;
    off();
    return reply;
  });

  app.post('/v1/detect', async (request, reply) => {
    const type = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (!IMAGE_TYPES.includes(type) || !Buffer.isBuffer(request.body)) {
      return reply.code(415).send({ error: { code: 'ERR_INPUT_FORMAT', message: wrongType(request.url, type) } });
    }
    if (request.body.length === 0) return reply.code(400).send({ error: { code: 'ERR_INPUT_EMPTY', message: 'the request body is empty (send the image bytes)' } });
    if (!service.batcher) return reply.code(503).send({ error: { code: 'ERR_CLOSED', message: 'the model is still loading' } });
    // Requests waiting for the detector are bounded: beyond that the client is told to come back.
    if (service.batcher.queuedFor('') >= MAX_WAITING_IMAGES) {
      return reply.code(503).header('Retry-After', '1').send({ error: { code: 'ERR_BUSY', message: `${MAX_WAITING_IMAGES} images are waiting for the detector already; try again` } });
    }
    try {
      const r = await service.batcher.submit('', request.body);
      return { width: r.width, height: r.height, detections: r.detections };
    } catch (e) {
      return sendError(reply, service, e);
    }
  });

  const address = await app.listen({ host, port });
  service.url = address.replace('[::1]', 'localhost');
  service.closeHttp = () => app.close();
}
