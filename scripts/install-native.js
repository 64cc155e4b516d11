#!/usr/bin/env node
/**
 * The package's npm "install" step for the native addon. It NEVER fails the install: without a C++
 * toolchain the package works on the CPU, and `deimv2 info` says why the addon is missing and how to
 * build it.
 *
 *   1. A prebuilt (prebuilds/<platform>-<arch>/) or local build (build/Release/) that loads, has the
 *      runtime interface, and has TensorRT where TensorRT headers are found: done.
 *   2. Else, with cmake and a C++17 compiler: build from source with cmake-js. Every build has the
 *      simulated GPU runtime (DEIMV2_GPU_RUNTIME=simulated, used by CI); where TensorRT headers are
 *      found (TENSORRT_ROOT or the standard places) it also has the TensorRT + CUDA runtime. A failed
 *      build is reported as a warning.
 *   3. Else: nothing to build with (one line says why and what to install).
 * Node's own headers are used when this Node ships them (<prefix>/include/node), so the build works
 * offline; otherwise cmake-js fetches them.
 *
 *   node scripts/install-native.js            the install step
 *   node scripts/install-native.js build      always build (npm run build:native); fails on error
 *   node scripts/install-native.js rebuild    prebuildify's node-gyp stand-in (`cmake-js rebuild`)
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

/** buildInfo() of the addon node-gyp-build would load (and whether it has the runtime seam), or the load error. */
function probeAddon() {
  try {
    const addon = require('node-gyp-build')(root);
    return { info: addon.buildInfo(), seam: typeof addon.useRuntime === 'function' };
  } catch (e) {
    return { error: String(e?.message ?? e).split('\n')[0] };
  }
}

const runs = (command, args) => {
  try {
    return spawnSync(command, args, { stdio: 'ignore' }).status === 0;
  } catch {
    return false;
  }
};

/** Why the addon cannot be built here ('' when it can). */
function missingToolchain() {
  if (!runs('cmake', ['--version'])) return 'cmake is not installed';
  const compilers = [process.env.CXX, 'c++', 'g++', 'clang++'].filter(Boolean);
  if (!compilers.some((c) => runs(c, ['--version']))) return 'no C++ compiler (c++, g++ or clang++) is installed';
  return '';
}

/** npm_config_nodedir for cmake-js: this Node's own headers when it ships them (no download). */
function nodeHeadersEnv() {
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  if (process.env.npm_config_nodedir || !existsSync(path.join(prefix, 'include', 'node', 'node_api.h'))) return {};
  return { npm_config_nodedir: prefix };
}

function cmakeJs(args, extraEnv = {}) {
  let bin;
  try {
    bin = require.resolve('cmake-js/bin/cmake-js');
  } catch {
    return { ok: false, why: 'cmake-js is not installed (npm install cmake-js, then npm run build:native)' };
  }
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: root, stdio: 'inherit', env: { ...process.env, ...nodeHeadersEnv(), ...extraEnv } });
  return r.status === 0 ? { ok: true } : { ok: false, why: `cmake-js ${args[0]} exited with ${r.status ?? r.signal}` };
}

function install() {
  if (process.env.DEIMV2_SKIP_NATIVE) return say('DEIMV2_SKIP_NATIVE is set: not building the native addon (the CPU backend works)');
  const headers = findTensorRtHeaders();
  // DEIMV2_NATIVE_REBUILD=1: ignore an existing build (tests of this script).
  const probe = process.env.DEIMV2_NATIVE_REBUILD ? {} : probeAddon();
  if (probe.info && probe.seam && (probe.info.tensorrt || !headers)) {
    return say(probe.info.tensorrt ? `native addon ready (TensorRT ${probe.info.tensorrtHeaders})` : 'native addon ready (simulated GPU runtime only: TensorRT was not found)');
  }
  const missing = missingToolchain();
  if (missing) {
    return say(`not building the native addon: ${missing}. The CPU backend works; for TensorRT (and the simulated GPU runtime) ` +
      'install cmake and a C++17 compiler (Debian: apt-get install cmake g++), then run npm run build:native.');
  }
  say(headers ? `TensorRT headers in ${headers}: building the native addon with TensorRT` : 'building the native addon (simulated GPU runtime; TensorRT not found, set TENSORRT_ROOT for it)');
  const built = cmakeJs(['compile']);
  if (!built.ok) say(`warning: building the native addon failed (${built.why}); the CPU backend will be used`);
}

try {
  if (process.argv[2] === 'rebuild') {
    // prebuildify's node-gyp call: a failure here must fail the prebuild, unlike the install.
    const release = !process.argv.includes('--debug');
    const r = cmakeJs(['rebuild', ...(release ? [] : ['--debug'])]);
    if (!r.ok) { console.error(`deimv2: ${r.why}`); process.exitCode = 1; }
  } else if (process.argv[2] === 'build') {
    const r = cmakeJs(['compile', ...process.argv.slice(3)]);
    if (!r.ok) { console.error(`deimv2: ${r.why}`); process.exitCode = 1; }
  } else {
    install();
  }
} catch (e) {
  say(`warning: native addon step skipped: ${e?.message ?? e}`);
}
