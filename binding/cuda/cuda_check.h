// CUDA runtime statuses as NativeError naming the failing call (never abort(), never a silent status).
#pragma once

#include <cuda_runtime_api.h>

#include <string>

#include "native_error.h"

namespace deimv2 {
namespace cuda {

// "cudaMalloc(&ptr, bytes) failed: cudaErrorMemoryAllocation (2): out of memory"
inline void CheckCuda(cudaError_t status, const char* call) {
  if (status == cudaSuccess) return;
  throw NativeError(std::string(call) + " failed: " + cudaGetErrorName(status) + " (" +
                        std::to_string(static_cast<int>(status)) + "): " + cudaGetErrorString(status),
                    "ERR_CUDA");
}

}  // namespace cuda
}  // namespace deimv2

#define DEIMV2_CUDA(call) ::deimv2::cuda::CheckCuda((call), #call)
