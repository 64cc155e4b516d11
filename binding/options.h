// Argument checking for every native entry point, shared by the TensorRT build and the build without
// it, so both reject the same bad input with the same message before anything touches memory.
// Vocabulary (as sharp): "Expected <what> for <name> but received <value> of type <type>";
// TypeError for a wrong type, RangeError for a value out of range.
#pragma once

#include <cstdint>
#include <string>

#include "napi_config.h"

namespace deimv2 {

// Options of buildEngine(), field by field as in src/backends/tensorrt/native.ts (NativeBuildOptions).
struct BuildOptions {
  std::string onnxPath;         // required: the ONNX graph to parse
  std::string enginePath;       // required: where the serialized engine is written (atomically)
  std::string timingCachePath;  // "" = no timing cache; else read if present and written back after the build
  bool fp16 = false;            // precision "fp16" | "fp32"
  bool stronglyTyped = false;   // take every precision from the graph's types (TensorRT 11 always does)
  int32_t minBatch = 1;         // optimisation profile of the batch axis: 1 <= min <= opt <= max
  int32_t optBatch = 1;
  int32_t maxBatch = 1;
  uint64_t workspaceBytes = 0;  // builder workspace limit; 0 keeps TensorRT's default (the device memory)
  int32_t device = 0;           // CUDA device index
};

// Options of openEngine().
struct OpenOptions {
  std::string enginePath;  // required: a file written by buildEngine()
  int32_t device = 0;      // CUDA device index the engine runs on
  int32_t contexts = 2;    // execution contexts in the pool (each with its stream and buffers), 1..16
};

constexpr int32_t kMaxBatchLimit = 4096;
constexpr int32_t kMaxContexts = 16;
constexpr int32_t kMaxDevice = 255;

BuildOptions ParseBuildOptions(const Napi::Value& value);
OpenOptions ParseOpenOptions(const Napi::Value& value);

// An integer argument in [min, max]; throws TypeError / RangeError naming `name`.
int32_t ExpectInt(const Napi::Value& value, const char* name, int32_t min, int32_t max);
// A function argument, or an empty Function when `value` is undefined and `optional`.
Napi::Function ExpectFunction(const Napi::Value& value, const char* name, bool optional);

// "'abc'", "12.5", "undefined", "[object]": how a received value is quoted in error messages.
std::string DescribeValue(const Napi::Value& value);
[[noreturn]] void ThrowTypeError(const Napi::Value& value, const char* expected, const char* name);
[[noreturn]] void ThrowRangeError(const Napi::Value& value, const char* expected, const char* name);

// A JS Error with a stable `code` property (read by src/backends/tensorrt/native.ts).
Napi::Error ErrorWithCode(Napi::Env env, const std::string& message, const char* code);

}  // namespace deimv2
