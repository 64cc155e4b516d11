#!/usr/bin/env node
/**
 * The package's npm "install" step for the native TensorRT addon. It NEVER fails the install: a
 * machine without GPU, CUDA or TensorRT gets the CPU backend, and `deimv2 info` says why.
 *
 *   1. A prebuilt (prebuilds/<platform>-<arch>/) or local build (build/Release/) that loads and has
 *      TensorRT: done.
 *   2. Else, when TensorRT headers are found (TENSORRT_ROOT or the standard places), build from
 *      source with cmake-js; a failed build is reported as a warning.
 *   3. Else: nothing to do (one line says why).
 *
 * Also a node-gyp stand-in for prebuildify (`prebuildify --napi --strip --node-gyp scripts/install-native.js`):
 * called as `install-native.js rebuild --target=... --release`, it runs `cmake-js rebuild`.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const say = (line) => console.log(`deimv2: ${line}`);

/** The include folder holding NvInfer.h, searched as cmake/FindTensorRT.cmake does, or undefined. */
function findTensorRtHeaders() {
  const roots = [process.env.TENSORRT_ROOT, process.env.CUDA_PATH, process.env.CUDA_HOME, '/usr/local/cuda', '/usr/local/tensorrt', '/opt/tensorrt', '/usr/local', '/usr'];
  const arch = process.arch === 'arm64' ? 'aarch64-linux-gnu' : 'x86_64-linux-gnu';
  for (const r of roots.filter(Boolean)) {
    for (const dir of [path.join(r, 'include'), path.join(r, 'include', arch)]) {
      if (existsSync(path.join(dir, 'NvInfer.h'))) return dir;
    }
  }
  return undefined;
}

/** buildInfo() of the addon node-gyp-build would load, or the load error. */
function probeAddon() {
  try {
    const addon = require('node-gyp-build')(root);
    return { info: addon.buildInfo() };
  } catch (e) {
    return { error: String(e?.message ?? e).split('\n')[0] };
  }
}

function cmakeJs(args) {
  let bin;
  try {
    bin = require.resolve('cmake-js/bin/cmake-js');
  } catch {
    return { ok: false, why: 'cmake-js is not installed (npm install cmake-js, then npm run build:native)' };
  }
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: root, stdio: 'inherit' });
  return r.status === 0 ? { ok: true } : { ok: false, why: `cmake-js ${args[0]} exited with ${r.status ?? r.signal}` };
}

function install() {
  if (process.env.DEIMV2_SKIP_NATIVE) return say('DEIMV2_SKIP_NATIVE is set: not building the TensorRT addon');
  const probe = probeAddon();
  if (probe.info?.tensorrt) return say(`TensorRT addon ready (built with TensorRT ${probe.info.tensorrtHeaders})`);
  const headers = findTensorRtHeaders();
  if (!headers) {
    return say('TensorRT not found (no NvInfer.h; set TENSORRT_ROOT): the CPU backend will be used. ' +
      'With TensorRT installed, run `npm run build:native`.');
  }
  say(`TensorRT headers in ${headers}: building the native addon from source`);
  const built = cmakeJs(['compile']);
  if (!built.ok) say(`warning: building the TensorRT addon failed (${built.why}); the CPU backend will be used`);
}

try {
  if (process.argv[2] === 'rebuild') {
    // prebuildify's node-gyp call: a failure here must fail the prebuild, unlike the install.
    const release = !process.argv.includes('--debug');
    const r = cmakeJs(['rebuild', ...(release ? [] : ['--debug'])]);
    if (!r.ok) { console.error(`deimv2: ${r.why}`); process.exitCode = 1; }
  } else {
    install();
  }
} catch (e) {
  say(`warning: native addon step skipped: ${e?.message ?? e}`);
}
