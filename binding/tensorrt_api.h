// Registers the addon's GPU functions, the same in every build: buildEngine, openEngine, cudaDevices,
// tensorrtVersion, useRuntime, runtime, simulator, TensorRtEngine. What they run on is the active
// runtime (binding/runtime/gpu_runtime.h): TensorRT + CUDA where the addon was built with them (else
// "TensorRT unavailable: <reason>"), or the simulated runtime after useRuntime('simulated').
#pragma once

#include "napi_config.h"

namespace deimv2 {

void RegisterTensorRt(Napi::Env env, Napi::Object exports);

}  // namespace deimv2
