// Argument checking for every native entry point, shared by the TensorRT build and the build without
// it, so both reject the same bad input with the same message before anything touches memory.
// Vocabulary (as sharp): "Expected <what> for <name> but received <value> of type <type>";
// TypeError for a wrong type, RangeError for a value out of range.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "napi_config.h"

namespace deimv2 {

// Options of buildEngine(), field by field as in src/backends/tensorrt/native.ts (NativeBuildOptions).
struct BuildOptions {
  std::string onnxPath;         // required: the ONNX graph to parse
  std::string enginePath;       // required: where the serialized engine is written (atomically)
  std::string timingCachePath;  // "" = no timing cache; else read if present and written back after the build
  std::string recordingPath;    // simulated runtime only: recorded inputs/outputs (src/engine/record.ts)
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
  int32_t frameBytes = 0;  // per slot, pinned uint8 staging for inferFrames(); 0 = no GPU preprocessing
  bool cudaGraphs = true;  // capture enqueueV3 into a CUDA graph per slot once a batch size repeats
};

// One image of inferFrames(): where its RGB bytes are in the slot's frame staging, and how the
// preprocessing kernel resizes it into the image tensor (see binding/preprocess.h). Each resampling
// table lives in the `tables` Int32Array at its offset: outSize (first, count) pairs, then outSize *
// taps fixed-point weights, exactly as src/backends/tensorrt/frames.ts lays them out.
struct FrameItem {
  int32_t frameOffset = 0;  // byte offset of the first row in the frame staging
  int32_t srcWidth = 0;
  int32_t srcHeight = 0;
  int32_t srcStride = 0;    // bytes per source row (>= srcWidth * 3)
  int32_t hTable = 0;       // offset of the horizontal table in `tables`
  int32_t hTaps = 0;
  int32_t outWidth = 0;     // the resized width (the tensor side, or less when letterboxed)
  int32_t vTable = 0;
  int32_t vTaps = 0;
  int32_t outHeight = 0;
  int32_t offsetX = 0;      // where the resized image sits in the square plane (letterbox), else 0
  int32_t offsetY = 0;
};
constexpr size_t kFrameItemFields = 12;  // int32 values per image in the plan array
constexpr size_t kLutSize = 3 * 256;     // the float each uint8 value becomes, per channel

// inferFrames()' arguments, copied out of JS memory once checked, so the GPU only ever reads what
// was validated here even if JS rewrites its arrays while the slot is in flight.
struct FramePlan {
  std::vector<FrameItem> items;
  std::vector<int32_t> tables;
  std::vector<float> lut;
  size_t frameBytesUsed = 0;  // the prefix of the staging buffer the batch occupies (what is uploaded)
};

// Checks plan (Int32Array of batch * kFrameItemFields), tables (Int32Array) and lut (Float32Array of
// kLutSize) against the slot's staging size and the tensor's square side; throws TypeError /
// RangeError naming the field and the image before anything is read from the staging buffer.
FramePlan ParseFramePlan(const Napi::Value& plan, const Napi::Value& tables, const Napi::Value& lut, int32_t batch,
                         size_t frameBytes, int32_t planeSide);

constexpr int32_t kMaxBatchLimit = 4096;
constexpr int32_t kMaxContexts = 16;
constexpr int32_t kMaxDevice = 255;

BuildOptions ParseBuildOptions(const Napi::Value& value);
OpenOptions ParseOpenOptions(const Napi::Value& value);

// An integer argument in [min, max]; throws TypeError / RangeError naming `name`.
int32_t ExpectInt(const Napi::Value& value, const char* name, int32_t min, int32_t max);
// A function argument, or an empty Function when `value` is undefined and `optional`.
Napi::Function ExpectFunction(const Napi::Value& value, const char* name, bool optional);

// checkFramePlan(plan, tables, lut, batch, frameBytes, planeSide) -> { frameBytesUsed }: the checks
// inferFrames() makes, callable in every build (the build without TensorRT included) so the
// TypeScript side and CI can test them.
Napi::Value CheckFramePlan(const Napi::CallbackInfo& info);

// "'abc'", "12.5", "undefined", "[object]": how a received value is quoted in error messages.
std::string DescribeValue(const Napi::Value& value);
[[noreturn]] void ThrowTypeError(const Napi::Value& value, const char* expected, const char* name);
[[noreturn]] void ThrowRangeError(const Napi::Value& value, const char* expected, const char* name);

// A JS Error with a stable `code` property (read by src/backends/tensorrt/native.ts).
Napi::Error ErrorWithCode(Napi::Env env, const std::string& message, const char* code);

}  // namespace deimv2
