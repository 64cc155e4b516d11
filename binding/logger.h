// The TensorRT logger: keeps TensorRT's own error text so a failed call can say why, and forwards
// nothing to stdout (a library must not print; the JS side decides what to show).
#pragma once

#include <NvInferRuntime.h>

#include <mutex>
#include <string>
#include <vector>

namespace deimv2 {

class TrtLogger : public nvinfer1::ILogger {
 public:
  void log(Severity severity, nvinfer1::AsciiChar const* message) noexcept override;

  // The latest error TensorRT reported ("" when none), to append to the failing call's message.
  std::string LastError() const;
  // Warnings since the last call, e.g. for the build result.
  std::vector<std::string> TakeWarnings();

 private:
  mutable std::mutex mutex_;  // TensorRT may log from its own threads
  std::string lastError_;
  std::vector<std::string> warnings_;
};

// "<what> failed" plus TensorRT's latest error, if it gave one.
std::string TrtFailure(const char* what, const TrtLogger& logger);

}  // namespace deimv2
