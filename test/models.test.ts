/** Variant table, model resolution and class names. */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { COCO_CATEGORY_IDS, COCO_CLASS_NAMES, VARIANTS, loadClassNames, resolveModel, variantFromFileName, modelSearchDirs } from '../dist/index.js';
import { MODEL_DIR, ROOT } from './helpers/paths.js';
import { tempDir, write } from './helpers/images.js';

describe('variants', () => {
  it('has the eight DEIMv2 configurations', () => {
    expect(Object.values(VARIANTS).map((v) => [v.name, v.inputSize, v.queries, v.normalization])).toEqual([
      ['atto', 320, 100, 'none'], ['femto', 416, 150, 'none'], ['pico', 640, 200, 'none'], ['n', 640, 300, 'none'],
      ['s', 640, 300, 'imagenet'], ['m', 640, 300, 'imagenet'], ['l', 640, 300, 'imagenet'], ['x', 640, 300, 'imagenet'],
    ]);
    expect(VARIANTS.n.fileName).toBe('deimv2_hgnetv2_n_coco.onnx');
    expect(VARIANTS.l.fileName).toBe('deimv2_dinov3_l_coco.onnx');
  });
  it('recognises variants from file names', () => {
    expect(variantFromFileName('/x/deimv2_hgnetv2_femto_coco.onnx')).toBe('femto');
    expect(variantFromFileName('deimv2_dinov3_s_coco.onnx')).toBe('s');
    expect(variantFromFileName('DEIMv2_dinov3_x_custom.onnx')).toBe('x');
    expect(variantFromFileName('deimv2_hgnetv2_nano.onnx')).toBeUndefined();
    expect(variantFromFileName('model.onnx')).toBeUndefined();
  });
});

describe('resolveModel', () => {
  it('searches --model-dir, DEIMV2_MODEL_DIR, ./models, then the package', () => {
    const env = { DEIMV2_MODEL_DIR: MODEL_DIR };
    expect(resolveModel('femto', { env })).toMatchObject({ variant: 'femto', source: 'env', path: path.join(MODEL_DIR, 'deimv2_hgnetv2_femto_coco.onnx') });
    const own = tempDir();
    write(own, 'deimv2_hgnetv2_femto_coco.onnx', 'x');
    expect(resolveModel('FEMTO', { env, modelDir: own })).toMatchObject({ source: 'model-dir', path: path.join(own, 'deimv2_hgnetv2_femto_coco.onnx') });
    // Atto ships with the package.
    expect(resolveModel('atto', { env: {}, cwd: tempDir() })).toMatchObject({ source: 'package', path: path.join(ROOT, 'models', 'deimv2_hgnetv2_atto_coco.onnx') });
    expect(modelSearchDirs({ env: {}, cwd: ROOT }).map((d) => d.source)).toEqual(['cwd']);
  });
  it('takes paths to .onnx files, with the variant from the name', () => {
    const p = path.join(MODEL_DIR, 'deimv2_hgnetv2_atto_coco.onnx');
    expect(resolveModel(p)).toMatchObject({ path: p, variant: 'atto', source: 'path' });
  });
});

describe('class names', () => {
  it('defaults to the 80 COCO classes with their original ids', () => {
    expect(COCO_CLASS_NAMES).toHaveLength(80);
    expect(COCO_CATEGORY_IDS).toHaveLength(80);
    expect([COCO_CLASS_NAMES[0], COCO_CATEGORY_IDS[0]]).toEqual(['person', 1]);
    expect([COCO_CLASS_NAMES[54], COCO_CATEGORY_IDS[54]]).toEqual(['donut', 60]);
    expect([COCO_CLASS_NAMES[79], COCO_CATEGORY_IDS[79]]).toEqual(['toothbrush', 90]);
  });
  it('reads one name a line, a JSON array, COCO categories and an id map', () => {
    const d = tempDir();
    expect(loadClassNames(write(d, 'a.txt', 'cat\n\ndog\r\n'))).toEqual({ names: ['cat', 'dog'], categoryIds: [1, 2] });
    expect(loadClassNames(write(d, 'b.json', '["cat","dog"]'))).toEqual({ names: ['cat', 'dog'], categoryIds: [1, 2] });
    expect(loadClassNames(write(d, 'c.json', '[{"id":7,"name":"cat"},{"id":9,"name":"dog"}]'))).toEqual({ names: ['cat', 'dog'], categoryIds: [7, 9] });
    expect(loadClassNames(write(d, 'd.json', '{"3":"dog","1":"cat"}'))).toEqual({ names: ['cat', 'dog'], categoryIds: [1, 3] });
    expect(() => loadClassNames(write(d, 'e.json', '{"a": 1}'))).toThrow(/expected a JSON array of names/);
    expect(() => loadClassNames(write(d, 'f.json', '[1,'))).toThrow(/not valid JSON/);
    expect(() => loadClassNames(write(d, 'g.txt', '\n\n'))).toThrow(/holds no class names/);
  });
});
