// buildInfo(): what this build of the addon contains (TensorRT headers it was compiled against, CUDA
// kernels) and, for a build without TensorRT, the reason, for `deimv2 info` and error messages.
#pragma once

#include <string>

#include "napi_config.h"

namespace deimv2 {

Napi::Object BuildInfo(Napi::Env env);
// "TensorRT unavailable: the native addon was built without TensorRT (<reason>; ...)".
std::string UnavailableMessage();

}  // namespace deimv2
