// cudaDevices() -> { devices: [{ index, name, computeCapability: 'major.minor', totalMemory, multiprocessors }],
//                   error: '' | why none could be listed (no driver, no device) }
// Synchronous: it feeds tensorrtAvailability(), and cudaGetDeviceCount does no GPU work.
#pragma once

#include "napi_config.h"

namespace deimv2 {

Napi::Value CudaDevices(const Napi::CallbackInfo& info);

}  // namespace deimv2
