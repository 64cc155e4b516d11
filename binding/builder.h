// buildEngine(options, onProgress?) -> Promise<BuildResult>: ONNX -> serialized engine file, on a
// worker thread, through the active runtime. Builder phases reach JS through the worker's thread-safe
// progress queue, as { event: 'start'|'step'|'finish', phase, parent, step, steps }; a progress
// callback that returns false cancels the build (the promise rejects with ERR_CANCELLED and no file
// is written).
#pragma once

#include "napi_config.h"

namespace deimv2 {

Napi::Value BuildEngine(const Napi::CallbackInfo& info);

}  // namespace deimv2
