// Shared pieces of the TensorRT + CUDA adapter: CUDA status checks, the logger (per runtime and per
// build) and the error recorder (per execution context, so a slot never reports another's error).
#pragma once

#include <NvInferRuntime.h>
#include <cuda_runtime_api.h>

#include <atomic>
#include <mutex>
#include <string>
#include <vector>

#include "cuda/cuda_check.h"
#include "native_error.h"

namespace deimv2 {
namespace trt {

// Keeps TensorRT's own error text so a failed call can say why; prints nothing (a library must not).
class Logger : public nvinfer1::ILogger {
 public:
  void log(Severity severity, nvinfer1::AsciiChar const* message) noexcept override {
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
  std::string LastError() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return lastError_;
  }
  std::vector<std::string> TakeWarnings() {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<std::string> out;
    out.swap(warnings_);
    return out;
  }

 private:
  mutable std::mutex mutex_;  // TensorRT may log from its own threads
  std::string lastError_;
  std::vector<std::string> warnings_;
};

// "<what> failed" plus TensorRT's latest error, if it gave one.
inline std::string Failure(const char* what, const std::string& detail) {
  return std::string(what) + " failed" + (detail.empty() ? std::string() : ": " + detail);
}

// One per execution context: the errors TensorRT reports while running THAT context.
class ErrorRecorder : public nvinfer1::IErrorRecorder {
 public:
  int32_t getNbErrors() const noexcept override {
    std::lock_guard<std::mutex> lock(mutex_);
    return static_cast<int32_t>(errors_.size());
  }
  nvinfer1::ErrorCode getErrorCode(int32_t index) const noexcept override {
    std::lock_guard<std::mutex> lock(mutex_);
    return index >= 0 && static_cast<size_t>(index) < errors_.size() ? errors_[static_cast<size_t>(index)].first
                                                                       : nvinfer1::ErrorCode::kINVALID_ARGUMENT;
  }
  ErrorDesc getErrorDesc(int32_t index) const noexcept override {
    std::lock_guard<std::mutex> lock(mutex_);
    return index >= 0 && static_cast<size_t>(index) < errors_.size() ? errors_[static_cast<size_t>(index)].second.c_str() : "";
  }
  bool hasOverflowed() const noexcept override { return false; }
  void clear() noexcept override {
    std::lock_guard<std::mutex> lock(mutex_);
    errors_.clear();
  }
  bool reportError(nvinfer1::ErrorCode code, ErrorDesc desc) noexcept override {
    try {
      std::lock_guard<std::mutex> lock(mutex_);
      if (errors_.size() >= 16) errors_.erase(errors_.begin());
      errors_.emplace_back(code, desc != nullptr ? desc : "");
    } catch (...) {
    }
    return false;  // never ask TensorRT to abort
  }
  RefCount incRefCount() noexcept override { return ++references_; }
  RefCount decRefCount() noexcept override { return --references_; }

  // The latest error, then cleared (so the next failure does not show this one).
  std::string Take() {
    std::lock_guard<std::mutex> lock(mutex_);
    std::string last = errors_.empty() ? std::string() : errors_.back().second;
    errors_.clear();
    return last;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::pair<nvinfer1::ErrorCode, std::string>> errors_;
  std::atomic<int32_t> references_{0};
};

}  // namespace trt
}  // namespace deimv2

