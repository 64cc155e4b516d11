// Registers the TensorRT functions of the addon: buildEngine, openEngine, cudaDevices, tensorrtVersion.
// Two implementations, chosen by CMakeLists.txt: tensorrt_api.cc (with TensorRT) and unavailable.cc
// (without: same functions, same argument checks, then "TensorRT unavailable: <reason>").
#pragma once

#include "napi_config.h"

namespace deimv2 {

void RegisterTensorRt(Napi::Env env, Napi::Object exports);

}  // namespace deimv2
