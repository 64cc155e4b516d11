// Module registration only: what each function does lives in its own file.
#include "build_info.h"
#include "napi_config.h"
#include "options.h"
#include "sim/sim_stats.h"
#include "tensorrt_api.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("buildInfo", Napi::Function::New(
                               env, [](const Napi::CallbackInfo& info) { return deimv2::BuildInfo(info.Env()); },
                               "buildInfo"));
  exports.Set("checkFramePlan", Napi::Function::New(env, deimv2::CheckFramePlan, "checkFramePlan"));
  deimv2::RegisterTensorRt(env, exports);
  deimv2::sim::MarkJsThread();  // the simulator records frees on this thread as violations
  return exports;
}

}  // namespace

NODE_API_MODULE(deimv2_tensorrt, Init)
