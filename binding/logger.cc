#include "logger.h"

#include <NvInferRuntime.h>

namespace deimv2 {

void TrtLogger::log(Severity severity, nvinfer1::AsciiChar const* message) noexcept {
  if (message == nullptr) return;
  try {
    std::lock_guard<std::mutex> lock(mutex_);
    if (severity == Severity::kINTERNAL_ERROR || severity == Severity::kERROR) {
      lastError_ = message;
    } else if (severity == Severity::kWARNING && warnings_.size() < 100) {
      warnings_.emplace_back(message);
    }
  } catch (...) {
    // log() is noexcept: losing a message under memory pressure beats terminating the process.
  }
}

std::string TrtLogger::LastError() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return lastError_;
}

std::vector<std::string> TrtLogger::TakeWarnings() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::string> out;
  out.swap(warnings_);
  return out;
}

std::string TrtFailure(const char* what, const TrtLogger& logger) {
  std::string detail = logger.LastError();
  return std::string(what) + " failed" + (detail.empty() ? std::string() : ": " + detail);
}

}  // namespace deimv2
