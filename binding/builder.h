// buildEngine(options, onProgress?) -> Promise<BuildResult>: ONNX -> serialized TensorRT engine file,
// on a worker thread. Builder phases reach JS through the worker's thread-safe progress queue
// (IProgressMonitor), as { event: 'start'|'step'|'finish', phase, parent, step, steps }.
#pragma once

#include "napi_config.h"

namespace deimv2 {

Napi::Value BuildEngine(const Napi::CallbackInfo& info);

}  // namespace deimv2
