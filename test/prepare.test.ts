/**
 * deimv2 prepare on the real Atto/Femto exports with onnxruntime on the CPU: the GridSample
 * rewrite is equivalent, the FP16 graphs run, bad inputs get clear errors. The full 50-image
 * figures come from scripts/prepare-verify.js.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { register } from '../dist/cli/commands/prepare.js';
import { prepareLoaded, prepareModel } from '../dist/prepare/index.js';
import { float16BitsToFloat32, float32ToFloat16Bits } from '../dist/prepare/graph.js';
import { compareSessions, createSession, loadImageInputs, summarise, validateSessions, type ImageInput } from '../dist/prepare/measure.js';
import { DType, encodeModel, loadModel, onnx, saveModel } from '../dist/prepare/onnx-io.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const SHARED_MODELS = path.resolve(ROOT, process.env.DEIMV2_MODEL_DIR ?? '../shared/models');
const ATTO = path.join(ROOT, 'models/deimv2_hgnetv2_atto_coco.onnx');
const FEMTO = path.join(SHARED_MODELS, 'deimv2_hgnetv2_femto_coco.onnx');
const COCO = path.resolve(ROOT, '../shared/coco/val2017');

const sha = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');
const cocoFiles = (n: number): string[] => readdirSync(COCO).filter((f) => f.endsWith('.jpg')).sort().slice(0, n).map((f) => path.join(COCO, f));
const countOps = (bytes: Uint8Array, op: string): number => onnx.ModelProto.decode(bytes).graph!.node!.filter((n) => n.opType === op).length;

let tmp: string;
let attoImages: ImageInput[];
let attoRef: ort.InferenceSession;

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'deimv2-prepare-'));
  attoImages = await loadImageInputs(cocoFiles(12), 320);
  attoRef = await createSession(ATTO);
});
afterAll(async () => {
  await attoRef?.release();
  await rm(tmp, { recursive: true, force: true });
});

describe('float16 conversion', () => {
  it('rounds to nearest even and saturates to infinity like a Cast', () => {
    expect(float32ToFloat16Bits(1)).toBe(0x3c00);
    expect(float32ToFloat16Bits(-2)).toBe(0xc000);
    expect(float32ToFloat16Bits(65504)).toBe(0x7bff);
    expect(float32ToFloat16Bits(65520)).toBe(0x7c00); // halfway past the largest: rounds to inf
    expect(float32ToFloat16Bits(1 + 2 ** -11)).toBe(0x3c00); // tie -> even
    expect(float32ToFloat16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie -> even (up)
    expect(float32ToFloat16Bits(2 ** -24)).toBe(0x0001); // smallest subnormal
    expect(float32ToFloat16Bits(2 ** -26)).toBe(0x0000);
    expect(Number.isNaN(float16BitsToFloat32(float32ToFloat16Bits(NaN)))).toBe(true);
    expect(float16BitsToFloat32(0x3555)).toBeCloseTo(0.33325, 5);
  });
});

describe('GridSample rewrite (Atto)', () => {
  let out: string;
  let result: Awaited<ReturnType<typeof prepareModel>>;
  beforeAll(async () => {
    out = path.join(tmp, 'atto.engine.onnx');
    result = await prepareModel(ATTO, { out });
  });

  it('replaces all six GridSample nodes with gather ops and writes a valid model', () => {
    expect(result.rewritten).toBe(6);
    expect(result.warnings).toEqual([]);
    const bytes = readFileSync(out);
    expect(countOps(bytes, 'GridSample')).toBe(0);
    expect(countOps(bytes, 'GatherElements')).toBe(3 + 6);
    expect(Number(onnx.ModelProto.decode(bytes).opsetImport![0]!.version)).toBe(17);
  });

  it('gives the same boxes, scores and detections as the original on COCO images', async () => {
    const prepared = await createSession(out);
    const s = summarise(await compareSessions(attoRef, prepared, attoImages, 320, 0.4));
    await prepared.release();
    expect(s.refDetections).toBeGreaterThan(20);
    expect(s.maxBoxDelta).toBeLessThan(1e-3);
    expect(s.maxScoreDelta).toBeLessThan(1e-5);
    expect(s.identical).toBe(true);
  });

  it('keeps the batch axis dynamic', async () => {
    const prepared = await createSession(out);
    const [a, b] = attoImages;
    const batch = new Float32Array(2 * 3 * 320 * 320);
    batch.set(a!.chw, 0);
    batch.set(b!.chw, 3 * 320 * 320);
    const feeds = {
      images: new ort.Tensor('float32', batch, [2, 3, 320, 320]),
      orig_target_sizes: new ort.Tensor('int64', BigInt64Array.from([BigInt(a!.width), BigInt(a!.height), BigInt(b!.width), BigInt(b!.height)]), [2, 2]),
    };
    const [ref, got] = [await attoRef.run(feeds), await prepared.run(feeds)];
    await prepared.release();
    const refBoxes = ref.boxes!.data as Float32Array;
    const gotBoxes = got.boxes!.data as Float32Array;
    expect(gotBoxes.length).toBe(2 * 300 * 4);
    let max = 0;
    for (let i = 0; i < refBoxes.length; i++) max = Math.max(max, Math.abs(refBoxes[i]! - gotBoxes[i]!));
    expect(max).toBeLessThan(1e-3);
  });
});

describe('GridSample rewrite with static map sizes', () => {
  it('uses constants for C, H, W when value_info gives them, and stays equivalent', async () => {
    // Learn the real [N*heads, C, H, W] of each sampled map, then write C, H, W into value_info.
    const probe = loadModel(ATTO);
    const maps = [...new Set(probe.graph!.node!.filter((n) => n.opType === 'GridSample').map((n) => n.input![0]!))];
    for (const m of maps) probe.graph!.output!.push({ name: m, type: { tensorType: { elemType: DType.FLOAT } } });
    const probeSession = await createSession(encodeModel(probe));
    const img = attoImages[0]!;
    const out = await probeSession.run({
      images: new ort.Tensor('float32', img.chw, [1, 3, 320, 320]),
      orig_target_sizes: new ort.Tensor('int64', BigInt64Array.from([BigInt(img.width), BigInt(img.height)]), [1, 2]),
    });
    await probeSession.release();
    const model = loadModel(ATTO);
    for (const m of maps) {
      const dims = out[m]!.dims;
      const vi = model.graph!.valueInfo!.find((v) => v.name === m)!;
      vi.type!.tensorType!.shape!.dim = [{ dimParam: 'batch_heads' }, ...dims.slice(1).map((d) => ({ dimValue: d }))];
    }
    const staticPrep = prepareLoaded(model, {});
    const dynamicPrep = prepareLoaded(loadModel(ATTO), {});
    expect(staticPrep.rewritten).toBe(6);
    const shapeOps = (p: typeof staticPrep): number => p.model.graph!.node!.filter((n) => n.opType === 'Shape' && /GridSample/.test(n.name ?? '')).length;
    expect(shapeOps(staticPrep)).toBeLessThan(shapeOps(dynamicPrep));
    const session = await createSession(encodeModel(staticPrep.model));
    const s = summarise(await compareSessions(attoRef, session, attoImages.slice(0, 4), 320, 0.4));
    await session.release();
    expect(s.maxBoxDelta).toBeLessThan(1e-3);
    expect(s.maxScoreDelta).toBeLessThan(1e-5);
    expect(s.identical).toBe(true);
  });
});

describe.skipIf(!existsSync(FEMTO))('GridSample rewrite (Femto)', () => {
  it('is equivalent on COCO images', async () => {
    const r = await prepareModel(FEMTO, {});
    expect(r.rewritten).toBe(6);
    const images = await loadImageInputs(cocoFiles(4), 416);
    const [ref, prepared] = [await createSession(FEMTO), await createSession(r.bytes)];
    const s = summarise(await compareSessions(ref, prepared, images, 416, 0.4));
    await Promise.all([ref.release(), prepared.release()]);
    expect(s.maxBoxDelta).toBeLessThan(1e-3);
    expect(s.maxScoreDelta).toBeLessThan(1e-5);
    expect(s.identical).toBe(true);
  });
});

describe('FP16 (Atto)', () => {
  const images = (): ImageInput[] => attoImages.slice(0, 6);

  it('mixed-precision emulation rounds through float16 and keeps the detections', async () => {
    const r = await prepareModel(ATTO, { emulateFp16: true });
    expect(r.precision).toBe('fp16-emulated');
    expect(r.keptFp32.normalisation).toBeGreaterThan(0);
    expect(countOps(r.bytes, 'Cast')).toBeGreaterThan(100);
    const session = await createSession(r.bytes);
    const s = summarise(await compareSessions(attoRef, session, images(), 320, 0.4));
    await session.release();
    expect(s.nonFinite).toBe(0);
    expect(s.maxScoreDelta).toBeGreaterThan(0); // the rounding really happens
    expect(s.matched).toBe(s.refDetections);
  });

  it('all-FP16 emulation overflows in the first LayerNorm (the reason normalisation stays FP32)', async () => {
    const model = loadModel(ATTO);
    const all = prepareLoaded(model, { emulateFp16: true, fp16Plan: 'all' });
    expect(all.keptFp32).toEqual({});
    // Expose the variance input of layers.0/norm1 and look for inf on a real image.
    const pow = all.model.graph!.node!.find((n) => n.name === '/model/decoder/decoder/layers.0/norm1/Pow/Cast_back' || (n.output ?? []).includes('/model/decoder/decoder/layers.0/norm1/Pow_output_0'))!;
    expect(pow).toBeDefined();
    all.model.graph!.output!.push({ name: pow.output![0]!, type: { tensorType: { elemType: DType.FLOAT } } });
    const session = await createSession(encodeModel(all.model));
    let infs = 0;
    for (const img of attoImages) {
      const out = await session.run({
        images: new ort.Tensor('float32', img.chw, [1, 3, 320, 320]),
        orig_target_sizes: new ort.Tensor('int64', BigInt64Array.from([BigInt(img.width), BigInt(img.height)]), [1, 2]),
      });
      for (const v of out[pow.output![0]!]!.data as Float32Array) if (v === Infinity) infs++;
    }
    await session.release();
    expect(infs).toBeGreaterThan(0);
  });

  it('the real FP16 graph has float16 weights, float32 inputs/outputs, and runs in onnxruntime', async () => {
    const r = await prepareModel(ATTO, { precision: 'fp16', out: path.join(tmp, 'atto.fp16.onnx') });
    const m = onnx.ModelProto.decode(r.bytes);
    const half = m.graph!.initializer!.filter((t) => t.dataType === DType.FLOAT16).length;
    expect(half).toBeGreaterThan(50);
    for (const io of [...m.graph!.input!, ...m.graph!.output!]) expect(io.type!.tensorType!.elemType).not.toBe(DType.FLOAT16);
    const session = await createSession(r.bytes);
    const s = summarise(await compareSessions(attoRef, session, images(), 320, 0.4));
    // The same rule post-build validation applies to engines (one function, one tolerance).
    const v = await validateSessions(attoRef, session, images(), 320, { threshold: 0.4, precision: 'fp16' });
    await session.release();
    expect(s.nonFinite).toBe(0);
    expect(v.passed, v.message).toBe(true);
  });
});

describe('bad input', () => {
  it('says so when there is no GridSample, and still writes a valid model', async () => {
    const once = path.join(tmp, 'once.onnx');
    await prepareModel(ATTO, { out: once });
    const twice = await prepareModel(once, { out: path.join(tmp, 'twice.onnx') });
    expect(twice.rewritten).toBe(0);
    expect(twice.warnings.join()).toMatch(/no GridSample/);
    (await createSession(path.join(tmp, 'twice.onnx'))).release();
  });

  it('leaves a GridSample with other attributes alone, naming it', async () => {
    const model = loadModel(ATTO);
    const gs = model.graph!.node!.find((n) => n.opType === 'GridSample')!;
    gs.attribute!.find((a) => a.name === 'padding_mode')!.s = Buffer.from('border');
    const file = path.join(tmp, 'border.onnx');
    saveModel(model, file);
    const r = await prepareModel(file, {});
    expect(r.rewritten).toBe(5);
    expect(r.warnings).toEqual([`GridSample ${gs.name} left unchanged: padding_mode=border (only zeros is rewritten)`]);
    expect(countOps(r.bytes, 'GridSample')).toBe(1);
  });

  it('rejects a truncated or corrupt file, naming it', async () => {
    const truncated = path.join(tmp, 'truncated.onnx');
    await writeFile(truncated, readFileSync(ATTO).subarray(0, 100_000));
    await expect(prepareModel(truncated, { out: path.join(tmp, 'x.onnx') })).rejects.toMatchObject({ code: 'ERR_MODEL_INVALID', message: expect.stringContaining(truncated) });
    const garbage = path.join(tmp, 'garbage.onnx');
    await writeFile(garbage, Buffer.from('this is not a protobuf at all, just text\n'.repeat(50)));
    await expect(prepareModel(garbage, {})).rejects.toMatchObject({ code: 'ERR_MODEL_INVALID', message: expect.stringContaining(garbage) });
  });

  it('reports an output path that cannot be written, and never touches the input', async () => {
    const before = sha(ATTO);
    await expect(prepareModel(ATTO, { out: path.join(ATTO, 'under-a-file', 'out.onnx') })).rejects.toMatchObject({ code: 'ERR_OUTPUT_WRITE' });
    await expect(prepareModel(ATTO, { out: ATTO })).rejects.toMatchObject({ code: 'ERR_OUTPUT_CLASH', message: expect.stringContaining('would overwrite the input') });
    expect(sha(ATTO)).toBe(before);
  });

  it('rejects contradictory options', async () => {
    await expect(prepareModel(ATTO, { precision: 'fp16', emulateFp16: true })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    await expect(prepareModel(ATTO, { precision: 'fp8' as 'fp16' })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
  });
});

describe('deimv2 prepare (CLI)', () => {
  it('writes the prepared model and prints JSON', async () => {
    const program = new Command().exitOverride();
    register(program);
    const out = path.join(tmp, 'cli.onnx');
    let printed = '';
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((s: string) => ((printed += s), true)) as typeof process.stdout.write;
    try {
      await program.parseAsync(['node', 'deimv2', 'prepare', '--model', ATTO, '--out', out, '--json']);
    } finally {
      process.stdout.write = write;
    }
    const json = JSON.parse(printed);
    expect(json.rewritten).toBe(6);
    expect(json.outPath).toBe(out);
    expect(countOps(readFileSync(out), 'GridSample')).toBe(0);
  });
});
