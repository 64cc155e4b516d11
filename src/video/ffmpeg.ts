/**
 * Where ffmpeg is. Order: the DEIMV2_FFMPEG environment variable (a path), the system ffmpeg on
 * PATH, then the binary that the optional npm package @ffmpeg-installer/ffmpeg ships.
 * `deimv2 info` prints ffmpegInfo(); the video pipeline calls requireFfmpeg().
 */
import { accessSync, constants } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { DeimError } from '../errors.js';

export type FfmpegSource = 'env' | 'system' | 'npm';

export interface FfmpegLocation {
  /** Absolute path of the ffmpeg executable. */
  path: string;
  /** First token after "ffmpeg version", e.g. "5.1.9-0+deb12u1". */
  version: string;
  source: FfmpegSource;
  /** ffprobe next to ffmpeg, when there is one (used only to count a file's frames for progress). */
  ffprobePath?: string;
}

export type FfmpegInfo = FfmpegLocation | { error: string };

const EXE = process.platform === 'win32' ? '.exe' : '';

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(name: string, env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name + EXE);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

function versionOf(ffmpegPath: string): string | undefined {
  try {
    const out = execFileSync(ffmpegPath, ['-hide_banner', '-version'], { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'ignore'] });
    return /ffmpeg version (\S+)/.exec(out)?.[1] ?? 'unknown';
  } catch {
    return undefined;
  }
}

function npmFfmpeg(): string | undefined {
  try {
    const require = createRequire(import.meta.url);
    const pkg = require('@ffmpeg-installer/ffmpeg') as { path?: string };
    return pkg.path && isExecutable(pkg.path) ? pkg.path : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Look ffmpeg up now (uncached). `env` is a parameter so that a caller can ask "what would a
 * process with this PATH find".
 *
 * @example
 * const found = findFfmpeg();
 * if ('error' in found) console.error(found.error); else console.log(found.path, found.version);
 */
export function findFfmpeg(env: NodeJS.ProcessEnv = process.env): FfmpegInfo {
  const tried: string[] = [];
  const candidates: Array<[FfmpegSource, string | undefined]> = [];
  if (env.DEIMV2_FFMPEG) candidates.push(['env', env.DEIMV2_FFMPEG]);
  candidates.push(['system', onPath('ffmpeg', env)]);
  candidates.push(['npm', npmFfmpeg()]);
  for (const [source, file] of candidates) {
    if (!file) {
      tried.push(source === 'system' ? 'no ffmpeg on PATH' : 'no @ffmpeg-installer/ffmpeg package');
      continue;
    }
    const version = isExecutable(file) ? versionOf(file) : undefined;
    if (version === undefined) {
      tried.push(`${file} (${source}) does not run`);
      continue;
    }
    const probe = path.join(path.dirname(file), 'ffprobe' + EXE);
    const location: FfmpegLocation = { path: file, version, source };
    if (isExecutable(probe)) location.ffprobePath = probe;
    return location;
  }
  return {
    error:
      `ffmpeg not found (${tried.join('; ')}). Install it (Debian/Ubuntu: apt-get install ffmpeg; ` +
      'macOS: brew install ffmpeg), or npm install @ffmpeg-installer/ffmpeg, or set DEIMV2_FFMPEG to its path.',
  };
}

let cached: FfmpegInfo | undefined;

/** The ffmpeg this process uses (looked up once), or why there is none. For `deimv2 info`. */
export function ffmpegInfo(): FfmpegInfo {
  cached ??= findFfmpeg();
  return cached;
}

/** The ffmpeg to run, or DeimError ERR_FFMPEG_NOT_FOUND saying how to get one. */
export function requireFfmpeg(): FfmpegLocation {
  const info = ffmpegInfo();
  if ('error' in info) throw new DeimError('ERR_FFMPEG_NOT_FOUND', info.error);
  return info;
}
