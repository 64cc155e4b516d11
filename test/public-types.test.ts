/**
 * What the published declarations import, read statically from dist (fast; test/package-consumer.test.ts
 * compiles real consumers of the installed package with tsc --strict and without skipLibCheck).
 * Each entry of package.json's `exports` reaches, through its .d.ts and the relative imports they
 * make, only packages whose own declarations compile for such a user: never onnx-proto (its
 * declarations need protobufjs' global `Long`: 24 errors), ioredis (its declarations import the
 * untyped 'redis-errors') or BullMQ (which brings ioredis's). The main entry used to re-export the
 * queue, and with it ioredis's declarations; the queue is `deimv2/queue` now.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers/paths.js';

/** Packages the declarations may import: their declarations compile strictly (node: builtins come with @types/node). */
const ALLOWED = new Set(['commander', 'onnxruntime-node', 'sharp', 'prom-client']);

const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { exports: Record<string, string | { types?: string; import?: string }> };
const entries = Object.entries(pkg.exports).filter((e): e is [string, { types: string; import: string }] => typeof e[1] === 'object' && e[1].types !== undefined);

/** The declaration files an entry reaches through relative imports, and the packages they import. */
function reach(entry: string): { files: string[]; packages: Map<string, string[]> } {
  const files = new Set<string>();
  const packages = new Map<string, string[]>();
  const todo = [path.resolve(ROOT, entry)];
  while (todo.length > 0) {
    const file = todo.pop()!;
    if (files.has(file)) continue;
    files.add(file);
    const info = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
    const specifiers = [...info.importedFiles, ...info.referencedFiles].map((f) => f.fileName).concat(info.typeReferenceDirectives.map((t) => `@types/${t.fileName}`));
    for (const s of specifiers) {
      if (s.startsWith('.')) {
        todo.push(path.resolve(path.dirname(file), s.replace(/\.js$/, '.d.ts')));
      } else if (!s.startsWith('node:') && s !== '@types/node') {
        const name = s.startsWith('@') ? s.split('/').slice(0, 2).join('/') : s.split('/')[0]!;
        packages.set(name, [...(packages.get(name) ?? []), path.relative(ROOT, file)]);
      }
    }
  }
  return { files: [...files], packages };
}

describe('published type declarations', () => {
  it('package.json names deimv2, deimv2/queue and deimv2/serve, each with built types and code', () => {
    expect(entries.map(([k]) => k)).toEqual(expect.arrayContaining(['.', './queue', './serve']));
    for (const [, target] of entries) {
      expect(existsSync(path.join(ROOT, target.types)), target.types).toBe(true);
      expect(existsSync(path.join(ROOT, target.import)), target.import).toBe(true);
    }
  });

  it.each(entries.map(([k, t]) => [k, t.types]))('%s reaches only declarations that compile strictly (no ioredis, BullMQ or onnx-proto)', (_entry, types) => {
    const { files, packages } = reach(types);
    expect(files.length).toBeGreaterThan(1);
    const offending = Object.fromEntries([...packages].filter(([name]) => !ALLOWED.has(name)));
    expect(offending).toEqual({});
  });

  it('the main entry reaches no declaration of the queue', () => {
    const main = entries.find(([k]) => k === '.')![1];
    const queueFiles = reach(main.types).files.filter((f) => f.startsWith(path.join(ROOT, 'dist', 'queue') + path.sep));
    expect(queueFiles.map((f) => path.relative(ROOT, f))).toEqual([]);
  });

  it('no declaration file in dist refers to onnx-proto', () => {
    const offenders: string[] = [];
    const walk = (d: string) => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.name.endsWith('.d.ts') && readFileSync(p, 'utf8').includes('onnx-proto')) offenders.push(path.relative(ROOT, p));
      }
    };
    walk(path.join(ROOT, 'dist'));
    expect(offenders).toEqual([]);
  });
});
