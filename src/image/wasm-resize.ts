/**
 * The fused resize + float conversion of tensor.ts, run by WebAssembly SIMD kernels
 * (src/image/wasm/resize.c), bit-identical to the JavaScript passes and several times faster.
 *
 * One module instance per thread (each worker instantiates its own on first use; the module is
 * small, so synchronous instantiation is fine). Its linear memory grows to fit the largest image
 * seen and is then reused: a stream of images allocates nothing in steady state. Per image the
 * source rows the filter reads are copied in, both passes run, and the three planes are copied
 * out into the caller's tensor.
 *
 * Unavailable (callers use the JavaScript path) when the runtime lacks WebAssembly SIMD or the
 * environment sets DEIMV2_NO_WASM=1.
 */
import type { AxisWeights } from './pil-resize.js';
import type { RawImage } from './types.js';
import { RESIZE_WASM_BASE64 } from './wasm/resize-wasm.js';

/*
 * The few WebAssembly APIs used here, typed locally: the project compiles without the DOM lib,
 * which is where TypeScript declares WebAssembly.
 */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { readonly exports: unknown };
}

interface ResizeExports {
  readonly memory: WasmMemory;
  readonly __heap_base: { readonly value: number };
  horizontal_pass(
    src: number, width: number, channels: number, rowFirst: number, rowEnd: number,
    outWidth: number, span: number, start: number, weights: number, dst: number,
  ): void;
  vertical_pass_to_planes(
    temp: number, rowBytes: number, rowFirst: number, outHeight: number, span: number,
    start: number, weights: number, table: number, rowBuffer: number, planes: number,
  ): void;
}

const WASM_PAGE = 65_536;
/** Spare bytes after each buffer: the kernels load and store 16 bytes at a time past row ends. */
const SLACK = 16;
/** Source bytes copied into linear memory at once. */
const SOURCE_BAND_BYTES = 8 * 1024 * 1024;

/** undefined: not tried yet; null: unavailable (SIMD missing, disabled, or failed to load). */
let kernels: ResizeExports | null | undefined;

function loadKernels(): ResizeExports | null {
  const wasm = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
  if (process.env.DEIMV2_NO_WASM === '1' || wasm === undefined) return null;
  const bytes = Buffer.from(RESIZE_WASM_BASE64, 'base64');
  // The module itself uses SIMD instructions, so it validates only where SIMD is supported.
  if (!wasm.validate(bytes)) return null;
  try {
    return new wasm.Instance(new wasm.Module(bytes)).exports as ResizeExports;
  } catch {
    return null;
  }
}

function getKernels(): ResizeExports | null {
  if (kernels === undefined) kernels = loadKernels();
  return kernels;
}

/** Whether resizeToPlanesWasm can run in this thread. */
export function wasmResizeAvailable(): boolean {
  return getKernels() !== null;
}

/** Hands out 16-byte aligned regions of linear memory, from the module's heap base up. */
class Layout {
  end: number;
  constructor(base: number) {
    this.end = base;
  }
  take(bytes: number): number {
    const at = (this.end + 15) & ~15;
    this.end = at + bytes + SLACK;
    return at;
  }
}

function ensureMemory(memory: WasmMemory, bytes: number): void {
  const have = memory.buffer.byteLength;
  if (bytes <= have) return;
  // Grow at least by half again, so a slowly growing series of sizes does not grow every time.
  const want = Math.max(bytes, have + (have >> 1));
  memory.grow(Math.ceil((want - have) / WASM_PAGE));
}

/**
 * Resize `image` with the weights `xw` (width) and `yw` (height) and write the result as floats
 * (8-bit value v of channel c becomes table[c * 256 + v]) into `out`: channel c, row y, column x
 * at out[origin + c * plane + y * stride + x]. Same contract as tensor.ts's JavaScript passes.
 * The image must already be validated. Call only when wasmResizeAvailable().
 */
export function resizeToPlanesWasm(
  image: RawImage,
  xw: AxisWeights,
  yw: AxisWeights,
  rowFirst: number,
  rowEnd: number,
  table: Float32Array,
  out: Float32Array,
  origin: number,
  stride: number,
  plane: number,
): void {
  const k = getKernels();
  if (k === null) throw new Error('resizeToPlanesWasm called without WebAssembly SIMD kernels');
  const outWidth = xw.outSize;
  const outHeight = yw.outSize;
  const rows = rowEnd - rowFirst;
  const srcStride = image.width * image.channels;
  const rowBytes = outWidth * 3;

  // Source rows go in by bands, so linear memory (which never shrinks) stays small however large
  // the image: a 16383x16383 photo would otherwise keep 805 MB in every thread that saw one.
  const band = Math.max(1, Math.min(rows, Math.floor(SOURCE_BAND_BYTES / srcStride)));
  const layout = new Layout(k.__heap_base.value);
  const src = layout.take(band * srcStride);
  const xStart = layout.take(xw.start.byteLength);
  const xWeights = layout.take(xw.weights.byteLength);
  const yStart = layout.take(yw.start.byteLength);
  const yWeights = layout.take(yw.weights.byteLength);
  const tableAt = layout.take(table.byteLength);
  const temp = layout.take(rows * rowBytes);
  const rowBuffer = layout.take(rowBytes);
  const planes = layout.take(3 * outWidth * outHeight * 4);
  ensureMemory(k.memory, layout.end);

  const buffer = k.memory.buffer;
  const bytes = new Uint8Array(buffer);
  new Int32Array(buffer, xStart, xw.start.length).set(xw.start);
  new Int32Array(buffer, xWeights, xw.weights.length).set(xw.weights);
  new Int32Array(buffer, yStart, yw.start.length).set(yw.start);
  new Int32Array(buffer, yWeights, yw.weights.length).set(yw.weights);
  new Float32Array(buffer, tableAt, table.length).set(table);

  // Each band's rows are copied to `src`, so the horizontal pass sees rows 0..n of the band and
  // writes them (row after row) where the band belongs in `temp`.
  for (let first = rowFirst; first < rowEnd; first += band) {
    const n = Math.min(band, rowEnd - first);
    bytes.set(image.data.subarray(first * srcStride, (first + n) * srcStride), src);
    k.horizontal_pass(src, image.width, image.channels, 0, n, outWidth, xw.span, xStart, xWeights, temp + (first - rowFirst) * rowBytes);
  }
  k.vertical_pass_to_planes(temp, rowBytes, rowFirst, outHeight, yw.span, yStart, yWeights, tableAt, rowBuffer, planes);

  const packed = outWidth * outHeight;
  const result = new Float32Array(buffer, planes, 3 * packed);
  for (let c = 0; c < 3; c++) {
    const from = c * packed;
    const to = origin + c * plane;
    if (stride === outWidth) {
      out.set(result.subarray(from, from + packed), to);
    } else {
      for (let y = 0; y < outHeight; y++) {
        out.set(result.subarray(from + y * outWidth, from + (y + 1) * outWidth), to + y * stride);
      }
    }
  }
}
