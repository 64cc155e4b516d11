// The addon's TensorRT functions in a build with TensorRT (see tensorrt_api.h; the build without it
// registers the same names from unavailable.cc).
#include "tensorrt_api.h"

#include <NvInferRuntime.h>

#include <string>

#include "builder.h"
#include "device.h"
#include "engine.h"

namespace deimv2 {

namespace {

// tensorrtVersion() -> '10.13.3': the libnvinfer loaded at run time, which may differ from the headers.
Napi::Value TensorRtVersion(const Napi::CallbackInfo& info) {
  int32_t version = getInferLibVersion();
  return Napi::String::New(info.Env(), std::to_string(version / 10000) + "." + std::to_string((version / 100) % 100) +
                                           "." + std::to_string(version % 100));
}

}  // namespace

void RegisterTensorRt(Napi::Env env, Napi::Object exports) {
  exports.Set("buildEngine", Napi::Function::New(env, BuildEngine, "buildEngine"));
  exports.Set("openEngine", Napi::Function::New(env, OpenEngine, "openEngine"));
  exports.Set("cudaDevices", Napi::Function::New(env, CudaDevices, "cudaDevices"));
  exports.Set("tensorrtVersion", Napi::Function::New(env, TensorRtVersion, "tensorrtVersion"));
  exports.Set("TensorRtEngine", Engine::Define(env));
}

}  // namespace deimv2
