// CUDA and TensorRT failures as C++ exceptions that name the failing call; the AsyncWorkers turn them
// into rejected promises (never abort(), never a silent error code).
#pragma once

#include <cuda_runtime_api.h>

#include <stdexcept>
#include <string>

namespace deimv2 {

// A failure the JS side may want to tell apart, with a stable code (see ErrorWithCode in options.h).
class NativeError : public std::runtime_error {
 public:
  NativeError(const std::string& message, const char* code) : std::runtime_error(message), code_(code) {}
  const char* code() const noexcept { return code_; }

 private:
  const char* code_;
};

// "cudaMalloc(&ptr, bytes) failed: cudaErrorMemoryAllocation (2): out of memory"
inline void CheckCuda(cudaError_t status, const char* call) {
  if (status == cudaSuccess) return;
  throw NativeError(std::string(call) + " failed: " + cudaGetErrorName(status) + " (" +
                        std::to_string(static_cast<int>(status)) + "): " + cudaGetErrorString(status),
                    "ERR_CUDA");
}

}  // namespace deimv2

#define DEIMV2_CUDA(call) ::deimv2::CheckCuda((call), #call)
