#include "device.h"

#include <cuda_runtime_api.h>

#include <string>

namespace deimv2 {

Napi::Value CudaDevices(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object result = Napi::Object::New(env);
  Napi::Array devices = Napi::Array::New(env);
  result.Set("devices", devices);
  result.Set("error", "");

  int count = 0;
  cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    // No driver or no GPU is an answer here, not an exception: the caller reports it as the reason.
    result.Set("error", std::string("cudaGetDeviceCount failed: ") + cudaGetErrorName(status) + ": " +
                            cudaGetErrorString(status));
    static_cast<void>(cudaGetLastError());  // clear the sticky-free error so later calls start clean
    return result;
  }
  for (int index = 0; index < count; ++index) {
    cudaDeviceProp properties{};
    status = cudaGetDeviceProperties(&properties, index);
    if (status != cudaSuccess) {
      result.Set("error", std::string("cudaGetDeviceProperties(") + std::to_string(index) + ") failed: " +
                              cudaGetErrorName(status));
      continue;
    }
    Napi::Object device = Napi::Object::New(env);
    device.Set("index", index);
    device.Set("name", properties.name);
    device.Set("computeCapability", std::to_string(properties.major) + "." + std::to_string(properties.minor));
    device.Set("totalMemory", static_cast<double>(properties.totalGlobalMem));
    device.Set("multiprocessors", properties.multiProcessorCount);
    devices.Set(devices.Length(), device);
  }
  return result;
}

}  // namespace deimv2
