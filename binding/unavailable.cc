// The addon's TensorRT functions in a build without TensorRT. Each checks its arguments exactly as the
// real one does (options.cc), so callers get the same TypeError/RangeError for bad input everywhere,
// and then throws an Error with code ERR_TENSORRT_UNAVAILABLE and the reason recorded at build time.
#include "build_info.h"
#include "options.h"
#include "tensorrt_api.h"

namespace deimv2 {

namespace {

[[noreturn]] void ThrowUnavailable(Napi::Env env) {
  throw ErrorWithCode(env, UnavailableMessage(), "ERR_TENSORRT_UNAVAILABLE");
}

// buildEngine(options, onProgress?) -> Promise<BuildResult>
Napi::Value BuildEngine(const Napi::CallbackInfo& info) {
  ParseBuildOptions(info[0]);
  ExpectFunction(info[1], "onProgress", true);
  ThrowUnavailable(info.Env());
}

// openEngine(options) -> Promise<Engine>
Napi::Value OpenEngine(const Napi::CallbackInfo& info) {
  ParseOpenOptions(info[0]);
  ThrowUnavailable(info.Env());
}

// cudaDevices() -> { devices: DeviceInfo[], error: string }
Napi::Value CudaDevices(const Napi::CallbackInfo& info) { ThrowUnavailable(info.Env()); }

// tensorrtVersion() -> "10.13.3" (the library loaded at run time)
Napi::Value TensorRtVersion(const Napi::CallbackInfo& info) { ThrowUnavailable(info.Env()); }

}  // namespace

void RegisterTensorRt(Napi::Env env, Napi::Object exports) {
  exports.Set("buildEngine", Napi::Function::New(env, BuildEngine, "buildEngine"));
  exports.Set("openEngine", Napi::Function::New(env, OpenEngine, "openEngine"));
  exports.Set("cudaDevices", Napi::Function::New(env, CudaDevices, "cudaDevices"));
  exports.Set("tensorrtVersion", Napi::Function::New(env, TensorRtVersion, "tensorrtVersion"));
}

}  // namespace deimv2
