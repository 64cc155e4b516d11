// TensorRT's engine and execution contexts behind rt::Engine / rt::Context.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "runtime/gpu_runtime.h"

namespace deimv2 {
namespace trt {

// IRuntime::deserializeCudaEngine; throws ERR_ENGINE_INVALID with TensorRT's reason.
std::unique_ptr<rt::Engine> Deserialize(const std::vector<char>& bytes, const std::string& path);

}  // namespace trt
}  // namespace deimv2
