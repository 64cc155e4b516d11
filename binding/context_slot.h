// One execution context of the pool with everything it needs to run without sharing: its CUDA stream
// (created once), a blocking-sync event, device buffers and pinned host buffers for every I/O tensor
// sized for the profile's largest batch. A slot is either free or in flight (`busy`); while in flight
// its buffers belong to the GPU and the engine refuses to reuse or free them.
#pragma once

#include <NvInferRuntime.h>
#include <cuda_runtime_api.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "logger.h"
#include "pinned_buffer.h"

namespace deimv2 {

// An input or output tensor of the engine, read once when the engine is opened.
struct IoTensor {
  std::string name;
  bool isInput = false;
  nvinfer1::DataType type = nvinfer1::DataType::kFLOAT;
  const char* typeName = "float32";  // the TypedArray element type the JS side views it with
  size_t elementSize = 4;
  nvinfer1::Dims shape{};    // as the engine reports it: -1 on the dynamic batch axis
  bool batched = false;      // axis 0 is the (dynamic) batch axis
  int64_t itemElements = 0;  // elements per batch item (the product of axes 1..), or of the whole tensor
};

// Reads the engine's I/O tensors; throws NativeError(ERR_ENGINE_UNSUPPORTED) for what the pool cannot
// hold: a dynamic axis other than the batch, or a type with no TypedArray (INT4, FP4...).
std::vector<IoTensor> DescribeIo(const nvinfer1::ICudaEngine& engine);

class ContextSlot {
 public:
  // Allocates everything on `device`; throws NativeError naming the failing call.
  ContextSlot(nvinfer1::ICudaEngine& engine, const std::vector<IoTensor>& io, int32_t device, int32_t maxBatch,
              const TrtLogger& logger);
  ~ContextSlot();
  ContextSlot(const ContextSlot&) = delete;
  ContextSlot& operator=(const ContextSlot&) = delete;

  // Runs `batch` items on a worker thread: inputs are read from the pinned buffers, outputs written to
  // theirs; returns once they are there. The caller checked the batch against the profile.
  void Run(int32_t batch);

  const std::shared_ptr<PinnedBuffer>& HostBuffer(size_t tensor) const { return host_[tensor]; }

  // Set by the engine when an infer() is queued, cleared when its promise settles.
  std::atomic<bool> busy{false};

 private:
  void Release() noexcept;

  const std::vector<IoTensor>& io_;  // owned by the engine, which outlives its slots
  const TrtLogger& logger_;
  int32_t device_;
  int32_t shapeBatch_ = -1;  // the batch the context's input shapes are set for
  // Destroyed before the engine (LoadedEngine declares the slots after the engine): TensorRT requires
  // every IExecutionContext to go before its ICudaEngine.
  std::unique_ptr<nvinfer1::IExecutionContext> context_;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t done_ = nullptr;
  std::vector<void*> deviceBuffers_;
  std::vector<std::shared_ptr<PinnedBuffer>> host_;
};

}  // namespace deimv2
