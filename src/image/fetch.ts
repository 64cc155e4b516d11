/**
 * Images given as http(s) URLs: fetched into memory with a size cap and one time limit for the
 * whole transfer (headers and body), so a server that trickles, never ends, redirects forever or
 * announces a huge body gives a clear error in bounded time instead of a hang. Only http: and
 * https: are fetched, redirects included; any other "scheme://" string is refused by name (it is
 * never taken for a missing file).
 */
import { DeimError, errorMessage, type DeimErrorCode } from '../errors.js';

/** Most bytes one image URL may send (64 MiB). */
export const URL_MAX_BYTES = 64 * 1024 * 1024;
/** Seconds one image URL may take, from the request to the last byte (DEIMV2_URL_TIMEOUT overrides it). */
export const URL_TIMEOUT_SECONDS = 30;

/** The time limit in force: DEIMV2_URL_TIMEOUT (seconds, > 0 and at most 3600) or URL_TIMEOUT_SECONDS. */
export function urlTimeoutSeconds(): number {
  const given = process.env.DEIMV2_URL_TIMEOUT;
  if (given === undefined || given === '') return URL_TIMEOUT_SECONDS;
  const n = Number(given);
  if (!(n > 0 && n <= 3600)) throw new DeimError('ERR_INVALID_ARGUMENT', `DEIMV2_URL_TIMEOUT must be a number of seconds above 0 and at most 3600, got "${given}"`);
  return n;
}

const HTTP_URL = /^https?:\/\//i;
/** "scheme://..." (what a URL looks like), but not a Windows drive path. */
const ANY_URL = /^[a-z][a-z0-9+.-]+:\/\//i;

/** True for an http:// or https:// string (decided from the text only). */
export function isImageUrl(input: string): boolean {
  return HTTP_URL.test(input);
}

/** True for any "scheme://..." string: a URL, fetched or refused, never a file path. */
export function looksLikeUrl(input: string): boolean {
  return ANY_URL.test(input);
}

/** The URL with its user name and password replaced by ***, for messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.username || u.password) {
      u.username = u.username ? '***' : '';
      u.password = u.password ? '***' : '';
    }
    return u.toString();
  } catch {
    return url.replace(/\/\/[^/@]*@/, '//***@');
  }
}

/** The file name an image URL's path ends with ("" when it ends with a slash), for output names. */
export function urlFileName(url: string): string {
  try {
    const name = new URL(url).pathname.split('/').pop() ?? '';
    return decodeURIComponentSafe(name).replace(/[/\\\u0000-\u001f]/g, '_');
  } catch {
    return '';
  }
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** The refusal of a URL whose scheme deimv2 does not fetch (ftp:, file:, rtsp: given among images...). */
export function schemeRefused(url: string): DeimError {
  const name = redactUrl(url);
  const scheme = /^[^:]*:/.exec(url)?.[0] ?? url;
  return new DeimError('ERR_INPUT_NOT_ALLOWED', `${name}: only http:// and https:// image URLs are fetched, not ${scheme} (a video stream is given alone: deimv2 detect <url>)`, { input: name });
}

export interface FetchImageOptions {
  maxBytes?: number;
  timeoutSeconds?: number;
}

/**
 * GETs an image URL into memory: at most `maxBytes` (URL_MAX_BYTES), all within `timeoutSeconds`
 * (urlTimeoutSeconds()); redirects stay on http(s) (fetch stops a loop after 20). Errors name the
 * URL (credentials hidden): ERR_INPUT_NOT_FOUND for 404/410, ERR_INPUT_TOO_LARGE, ERR_INPUT_TIMEOUT,
 * ERR_INPUT_EMPTY, ERR_INPUT_UNREADABLE otherwise.
 */
export async function fetchImageUrl(url: string, options: FetchImageOptions = {}): Promise<Buffer> {
  const maxBytes = options.maxBytes ?? URL_MAX_BYTES;
  const seconds = options.timeoutSeconds ?? urlTimeoutSeconds();
  const name = redactUrl(url);
  const fail = (code: DeimErrorCode, message: string, cause?: unknown) => new DeimError(code, `${name}: ${message}`, { input: name, ...(cause === undefined ? {} : { cause }) });
  if (!isImageUrl(url)) throw schemeRefused(url);
  const tooLarge = (what: string) => fail('ERR_INPUT_TOO_LARGE', `${what} the ${maxBytes} bytes an image URL may send`);
  const timedOut = () => fail('ERR_INPUT_TIMEOUT', `no complete answer within ${seconds} s (the time limit for an image URL)`);
  // fetch() refuses a URL with credentials: they go in an Authorization header (dropped by fetch on
  // a redirect to another origin).
  const headers: Record<string, string> = { accept: 'image/*' };
  let target = url;
  try {
    const u = new URL(url);
    if (u.username || u.password) {
      headers.authorization = `Basic ${Buffer.from(`${decodeURIComponentSafe(u.username)}:${decodeURIComponentSafe(u.password)}`).toString('base64')}`;
      u.username = '';
      u.password = '';
      target = u.toString();
    }
  } catch (e) {
    throw fail('ERR_INVALID_ARGUMENT', 'not a valid URL', e);
  }
  const signal = AbortSignal.timeout(seconds * 1000);
  let response: Response;
  try {
    response = await fetch(target, { signal, redirect: 'follow', headers });
  } catch (e) {
    if (signal.aborted) throw timedOut();
    const why = errorMessage((e as { cause?: unknown }).cause ?? e);
    if (/redirect count exceeded/i.test(why)) throw fail('ERR_INPUT_UNREADABLE', 'more than 20 redirects (a redirect loop?)', e);
    if (/scheme must be a? ?HTTP/i.test(why)) throw fail('ERR_INPUT_NOT_ALLOWED', 'redirected to a URL that is not http(s); only http:// and https:// are fetched', e);
    throw fail('ERR_INPUT_UNREADABLE', `cannot fetch: ${why}`, e);
  }
  const cancel = () => response.body?.cancel().catch(() => undefined);
  try {
    const finalProtocol = new URL(response.url || target).protocol;
    if (finalProtocol !== 'http:' && finalProtocol !== 'https:') throw fail('ERR_INPUT_NOT_ALLOWED', `redirected to a ${finalProtocol} URL`);
    if (!response.ok) {
      const code = response.status === 404 || response.status === 410 ? 'ERR_INPUT_NOT_FOUND' : 'ERR_INPUT_UNREADABLE';
      throw fail(code, `HTTP ${response.status} ${response.statusText}`.trim());
    }
    const declared = Number(response.headers.get('content-length') ?? NaN);
    if (Number.isFinite(declared) && declared > maxBytes) throw tooLarge(`its Content-Length of ${declared} bytes is more than`);
  } catch (e) {
    void cancel();
    throw e;
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = response.body!.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.length;
      if (total > maxBytes) throw tooLarge('the body ran past');
      chunks.push(value);
    }
  } catch (e) {
    await reader.cancel().catch(() => undefined);
    if (e instanceof DeimError) throw e;
    if (signal.aborted) throw timedOut();
    throw fail('ERR_INPUT_UNREADABLE', `cannot fetch: ${errorMessage((e as { cause?: unknown }).cause ?? e)}`, e);
  }
  if (total === 0) throw fail('ERR_INPUT_EMPTY', 'empty answer (0 bytes)');
  return Buffer.concat(chunks, total);
}
