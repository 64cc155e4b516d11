#include "build_info.h"

#include "deimv2_build_info.h"
#include "runtime/gpu_runtime.h"

namespace deimv2 {

Napi::Object BuildInfo(Napi::Env env) {
  Napi::Object info = Napi::Object::New(env);
  info.Set("tensorrt", Napi::Boolean::New(env, DEIMV2_BUILD_WITH_TENSORRT != 0));
  info.Set("tensorrtHeaders", Napi::String::New(env, DEIMV2_BUILD_TENSORRT_VERSION));
  info.Set("cudaToolkit", Napi::String::New(env, DEIMV2_BUILD_CUDA_VERSION));
  // Whether the ACTIVE runtime has the preprocessing kernel: the CUDA build's, or the simulator's
  // host build of the same source.
  const bool simulated = std::string(rt::Active().Name()) == "simulated";
  info.Set("cudaKernels", Napi::Boolean::New(env, simulated || DEIMV2_BUILD_WITH_CUDA_KERNELS != 0));
  info.Set("runtime", Napi::String::New(env, rt::Active().Name()));
  info.Set("reason", Napi::String::New(env, DEIMV2_BUILD_UNAVAILABLE_REASON));
  info.Set("napiVersion", Napi::Number::New(env, NAPI_VERSION));
  return info;
}

std::string UnavailableMessage() {
  return std::string("TensorRT unavailable: the native addon was built without TensorRT (") +
         DEIMV2_BUILD_UNAVAILABLE_REASON + "; set TENSORRT_ROOT and run npm run build:native)";
}

}  // namespace deimv2
