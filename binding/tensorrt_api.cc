#include "tensorrt_api.h"

#include "builder.h"
#include "engine.h"
#include "options.h"
#include "runtime/gpu_runtime.h"
#include "sim/sim_stats.h"

namespace deimv2 {

namespace {

// Entry points run on the JS thread: a NativeError becomes a JS Error with its code.
template <Napi::Value (*F)(const Napi::CallbackInfo&)>
Napi::Value Entry(const Napi::CallbackInfo& info) {
  try {
    return F(info);
  } catch (const NativeError& e) {
    throw ErrorWithCode(info.Env(), e.what(), e.code());
  }
}

// cudaDevices() -> { devices: [{ index, name, computeCapability: 'major.minor', totalMemory, multiprocessors }],
//                   error: '' | why none could be listed (no driver, no device) }
Napi::Value CudaDevices(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string error;
  std::vector<rt::DeviceInfo> list = rt::Active().Devices(&error);
  Napi::Object result = Napi::Object::New(env);
  Napi::Array devices = Napi::Array::New(env, list.size());
  for (size_t i = 0; i < list.size(); ++i) {
    Napi::Object device = Napi::Object::New(env);
    device.Set("index", list[i].index);
    device.Set("name", list[i].name);
    device.Set("computeCapability", list[i].computeCapability);
    device.Set("totalMemory", list[i].totalMemory);
    device.Set("multiprocessors", list[i].multiprocessors);
    devices.Set(static_cast<uint32_t>(i), device);
  }
  result.Set("devices", devices);
  result.Set("error", error);
  return result;
}

// tensorrtVersion() -> '10.13.3': the library loaded at run time (may differ from the headers);
// the simulated runtime answers with its own version string ending in '-simulated'.
Napi::Value TensorRtVersion(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), rt::Active().Version()); }

// useRuntime('tensorrt' | 'simulated'): chooses the runtime of every later call of this process.
Napi::Value UseRuntime(const Napi::CallbackInfo& info) {
  if (!info[0].IsString()) ThrowTypeError(info[0], "'tensorrt' or 'simulated'", "runtime");
  rt::Select(info[0].As<Napi::String>().Utf8Value());
  return Napi::String::New(info.Env(), rt::Active().Name());
}

// runtime() -> 'tensorrt' | 'simulated'
Napi::Value RuntimeName(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), rt::Active().Name()); }

// simulator() -> what the simulated runtime holds now and the contract violations it saw (tests).
Napi::Value Simulator(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  sim::Stats stats = sim::CurrentStats();
  Napi::Object out = Napi::Object::New(env);
  out.Set("deviceBytes", static_cast<double>(stats.deviceBytes));
  out.Set("deviceAllocations", static_cast<double>(stats.deviceAllocations));
  out.Set("pinnedBytes", static_cast<double>(stats.pinnedBytes));
  out.Set("pinnedAllocations", static_cast<double>(stats.pinnedAllocations));
  out.Set("streams", static_cast<double>(stats.streams));
  out.Set("events", static_cast<double>(stats.events));
  out.Set("graphs", static_cast<double>(stats.graphs));
  out.Set("contexts", static_cast<double>(stats.contexts));
  out.Set("engines", static_cast<double>(stats.engines));
  out.Set("kernelLaunches", static_cast<double>(stats.kernelLaunches));
  out.Set("graphLaunches", static_cast<double>(stats.graphLaunches));
  out.Set("enqueues", static_cast<double>(stats.enqueues));
  Napi::Array violations = Napi::Array::New(env, stats.violations.size());
  for (size_t i = 0; i < stats.violations.size(); ++i) violations.Set(static_cast<uint32_t>(i), stats.violations[i]);
  out.Set("violations", violations);
  return out;
}

}  // namespace

void RegisterTensorRt(Napi::Env env, Napi::Object exports) {
  exports.Set("buildEngine", Napi::Function::New(env, Entry<BuildEngine>, "buildEngine"));
  exports.Set("openEngine", Napi::Function::New(env, Entry<OpenEngine>, "openEngine"));
  exports.Set("cudaDevices", Napi::Function::New(env, Entry<CudaDevices>, "cudaDevices"));
  exports.Set("tensorrtVersion", Napi::Function::New(env, Entry<TensorRtVersion>, "tensorrtVersion"));
  exports.Set("useRuntime", Napi::Function::New(env, Entry<UseRuntime>, "useRuntime"));
  exports.Set("runtime", Napi::Function::New(env, Entry<RuntimeName>, "runtime"));
  exports.Set("simulator", Napi::Function::New(env, Entry<Simulator>, "simulator"));
  exports.Set("TensorRtEngine", Engine::Define(env));
}

}  // namespace deimv2
