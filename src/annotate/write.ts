/**
 * Writing annotated images: the encoder is chosen from the output file's extension, and
 * `--out` paths are resolved per input file.
 *
 * @example
 * drawDetections(image, result.detections);
 * await writeAnnotatedImage(image, outputPathFor('photos/a.jpg', 'annotated', true)); // annotated/a.jpg
 */
import path from 'node:path';
import { DeimError, errorMessage } from '../errors.js';
import { writeFileAtomic } from '../output/atomic.js';
import { ensureDirectorySync } from '../output/plan.js';
import type { AnnotatableImage } from './draw.js';
import { requireSharp } from '../cjs.js';

type OutputFormat = 'jpeg' | 'png' | 'webp' | 'tiff' | 'avif' | 'gif';

/** Extensions we can write (lower case), and the encoder each selects. */
const FORMAT_BY_EXTENSION: Readonly<Record<string, OutputFormat>> = {
  '.jpg': 'jpeg',
  '.jpeg': 'jpeg',
  '.png': 'png',
  '.webp': 'webp',
  '.tif': 'tiff',
  '.tiff': 'tiff',
  '.avif': 'avif',
  '.gif': 'gif',
};

export const WRITABLE_EXTENSIONS: readonly string[] = Object.keys(FORMAT_BY_EXTENSION);

/** True when `file`'s extension names a format writeAnnotatedImage writes. */
export function isWritableImagePath(file: string): boolean {
  return Object.hasOwn(FORMAT_BY_EXTENSION, path.extname(file).toLowerCase());
}

/**
 * Encodes `image` in the format its extension names and writes it to `outPath` (atomically: a
 * temporary name renamed when complete), creating the parent directory. An unknown extension is ERR_INVALID_ARGUMENT; any failure to create the
 * directory or write the file is ERR_OUTPUT_WRITE naming the path. An alpha channel is kept
 * where the format has one (PNG, WebP, TIFF, AVIF, GIF) and dropped for JPEG.
 */
export async function writeAnnotatedImage(image: AnnotatableImage, outPath: string): Promise<void> {
  const extension = path.extname(outPath).toLowerCase();
  const format = Object.hasOwn(FORMAT_BY_EXTENSION, extension) ? FORMAT_BY_EXTENSION[extension] : undefined;
  if (format === undefined) {
    throw new DeimError(
      'ERR_INVALID_ARGUMENT',
      `Cannot write ${outPath}: unknown image extension "${extension || '(none)'}"; use one of ${WRITABLE_EXTENSIONS.join(', ')}`,
      { input: outPath },
    );
  }
  const encoded = await encode(image, format);
  try {
    ensureDirectorySync(path.dirname(path.resolve(outPath)));
    await writeFileAtomic(outPath, encoded);
  } catch (e) {
    throw new DeimError('ERR_OUTPUT_WRITE', `Cannot write ${outPath}: ${errorMessage(e)}`, { input: outPath, cause: e });
  }
}

let encoder: Promise<ReturnType<typeof requireSharp>> | undefined;

/**
 * The encoder (sharp), loaded once on first use: a run that writes no image does not pay for it.
 * A run that will write images calls this while its model loads, so the first annotated image
 * does not wait for it.
 */
export function loadEncoder(): Promise<ReturnType<typeof requireSharp>> {
  // On the next turn, so that it does not delay what the caller starts next (the model load).
  return (encoder ??= new Promise((resolve, reject) => setImmediate(() => {
    try {
      resolve(requireSharp());
    } catch (e) {
      reject(e);
    }
  })));
}

async function encode(image: AnnotatableImage, format: OutputFormat): Promise<Buffer> {
  const { data, width, height, channels } = image;
  const sharp = await loadEncoder();
  const pipeline = sharp(data, { raw: { width, height, channels } });
  switch (format) {
    case 'jpeg':
      return pipeline.jpeg({ quality: 90 }).toBuffer();
    case 'png':
      return pipeline.png().toBuffer();
    case 'webp':
      return pipeline.webp({ quality: 90 }).toBuffer();
    case 'tiff':
      return pipeline.tiff({ compression: 'lzw' }).toBuffer();
    case 'avif':
      return pipeline.avif({ quality: 70 }).toBuffer();
    case 'gif':
      return pipeline.gif().toBuffer();
  }
}

/** The annotated copy's name in folder `dir`: the input's basename, with ".jpg" when its format is not one we write. */
export function annotatedNameIn(dir: string, inputFile: string): string {
  const base = path.basename(inputFile);
  const extension = path.extname(base);
  return path.join(dir, isWritableImagePath(base) ? base : `${base.slice(0, base.length - extension.length)}.jpg`);
}

/**
 * Where the annotated copy of `inputFile` goes. With `isDir`, `out` is a directory and the file
 * keeps the input's basename (its extension too, or ".jpg" when it is not one we can write);
 * otherwise `out` is the output file itself. Refuses a path that would overwrite the input (by
 * name; the CLI's output plan also sees through links, see src/output/plan.ts).
 */
export function outputPathFor(inputFile: string, out: string, isDir: boolean): string {
  const target = isDir ? annotatedNameIn(out, inputFile) : out;
  if (path.resolve(target) === path.resolve(inputFile)) {
    throw new DeimError('ERR_INVALID_ARGUMENT', `Refusing to overwrite the input ${inputFile} with its annotated copy; choose another --out`, {
      input: inputFile,
    });
  }
  return target;
}

/**
 * The annotated copy of each input (`out` a folder, or one file for one input): same-named inputs
 * get `name-1.jpg`, `name-2.jpg`, ... in input order, so no two inputs share an output. Used by
 * `detect --out` and by `submit --annotate-dir`, so a queue submission plans its outputs as detect does.
 */
export function annotatedTargets(files: readonly string[], inputCount: number, out: string, outIsDir: boolean): Map<string, string> {
  if (!outIsDir && inputCount > 1) {
    throw new DeimError('ERR_INVALID_ARGUMENT', `--out ${out} names one file, but there are ${inputCount} input images: give a folder for their annotated copies (e.g. --out ${path.join(path.dirname(out), path.parse(out).name)}/)`, { input: out });
  }
  if (!outIsDir && !isWritableImagePath(out)) {
    throw new DeimError('ERR_INVALID_ARGUMENT', `--out ${out}: unknown image extension "${path.extname(out)}"; use one of ${WRITABLE_EXTENSIONS.join(', ')}`, { input: out });
  }
  const targets = new Map<string, string>();
  const used = new Set<string>();
  for (const file of files) {
    const first = outIsDir ? annotatedNameIn(out, file) : out;
    const ext = path.extname(first);
    let target = first;
    for (let n = 1; used.has(target); n++) target = `${first.slice(0, first.length - ext.length)}-${n}${ext}`;
    used.add(target);
    targets.set(file, target);
  }
  return targets;
}
