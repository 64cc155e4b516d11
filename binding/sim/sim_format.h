// The files of the simulated runtime:
//  - a simulated ENGINE file: a header ("DEIMV2SIMENGINE" magic, format version, payload size and
//    FNV-1a checksum, so truncated, corrupt and foreign files fail deserialisation with a clear
//    error), then the IO tensors, the batch profile and the recorded items;
//  - a RECORDING file (written by src/engine/record.ts): "DEIMV2RECORDING1", the tensors, then per
//    recorded image the exact bytes of every input item (the image tensor, orig_target_sizes) and of
//    every output item (labels, boxes, scores). All integers little-endian.
//  - the ONNX reader: only the graph's inputs and outputs (names, element types, shapes), which is
//    all a simulated build needs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/gpu_runtime.h"

namespace deimv2 {
namespace sim {

struct Record {
  std::vector<std::vector<uint8_t>> items;  // one byte string per tensor, in tensor order
};

struct EngineData {
  std::vector<rt::TensorInfo> tensors;
  int32_t minBatch = 1;
  int32_t optBatch = 1;
  int32_t maxBatch = 1;
  std::string deviceName;
  std::vector<Record> records;
};

constexpr char kEngineMagic[16] = {'D', 'E', 'I', 'M', 'V', '2', 'S', 'I', 'M', 'E', 'N', 'G', 'I', 'N', 'E', '\0'};
constexpr char kRecordingMagic[16] = {'D', 'E', 'I', 'M', 'V', '2', 'R', 'E', 'C', 'O', 'R', 'D', 'I', 'N', 'G', '1'};
constexpr uint32_t kEngineFormat = 1;

uint64_t Fnv1a(const uint8_t* data, size_t size, uint64_t hash = 1469598103934665603ULL);

std::vector<char> SerializeEngine(const EngineData& engine);
// Throws NativeError(ERR_ENGINE_INVALID) naming `path` and what is wrong with the bytes.
EngineData DeserializeEngine(const std::vector<char>& bytes, const std::string& path);

// Throws NativeError(ERR_MODEL_INVALID / ERR_INPUT_NOT_FOUND).
std::vector<rt::TensorInfo> ReadOnnxIo(const std::string& path);
// Throws NativeError(ERR_INVALID_ARGUMENT) for a malformed recording.
void ReadRecording(const std::string& path, std::vector<rt::TensorInfo>* tensors, std::vector<Record>* records);

size_t ElementSize(rt::DType type);
const char* DTypeName(rt::DType type);

}  // namespace sim
}  // namespace deimv2
