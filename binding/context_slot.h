// One execution context of the pool with everything it needs to run without sharing: its stream
// (created once), an event, device buffers and pinned host buffers for every I/O tensor sized for the
// profile's largest batch. A slot is either free or in flight (`busy`); while in flight its buffers
// belong to the GPU and the engine refuses to reuse or free them. Runtime-agnostic: every GPU call
// goes through rt::GpuRuntime (binding/runtime/gpu_runtime.h).
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "options.h"
#include "pinned_buffer.h"
#include "runtime/gpu_runtime.h"

namespace deimv2 {

// An input or output tensor of the engine, read once when the engine is opened.
struct IoTensor {
  std::string name;
  bool isInput = false;
  rt::DType type = rt::DType::kFloat;
  const char* typeName = "float32";  // the TypedArray element type the JS side views it with
  size_t elementSize = 4;
  rt::Shape shape{};         // as the engine reports it: -1 on the dynamic batch axis
  bool batched = false;      // axis 0 is the (dynamic) batch axis
  int64_t itemElements = 0;  // elements per batch item (the product of axes 1..), or of the whole tensor
};

// Reads the engine's I/O tensors; throws NativeError(ERR_ENGINE_UNSUPPORTED) for what the pool cannot
// hold: a dynamic axis other than the batch, or a type with no TypedArray (INT4, FP4...).
std::vector<IoTensor> DescribeIo(rt::Engine& engine);

// The input the preprocessing kernel writes: the float32 [N,3,S,S] tensor with a fixed square side
// S. Returns its index in `io`, or -1 when the engine has none (inferFrames() is then refused).
int32_t FindImageInput(const std::vector<IoTensor>& io);

// What one slot's CUDA graph is doing, for engine.cudaGraphs (read on the JS thread).
struct GraphStatus {
  bool enabled = false;   // graphs asked for and not (yet) failed
  int32_t batch = -1;     // the batch size the current graph was captured for; -1 = none
  std::string failure;    // why capture was given up ("" when it was not)
};

class ContextSlot {
 public:
  // Allocates everything on `device`; throws NativeError naming the failing call (and frees what it
  // had allocated). `options.frameBytes` > 0 adds the uint8 frame staging (pinned + device) for
  // inferFrames(); `options.cudaGraphs` lets Run() replay the enqueue from a graph once a batch size repeats.
  ContextSlot(rt::GpuRuntime& runtime, rt::Engine& engine, const std::vector<IoTensor>& io, int32_t device,
              int32_t maxBatch, const OpenOptions& options);
  ~ContextSlot();
  ContextSlot(const ContextSlot&) = delete;
  ContextSlot& operator=(const ContextSlot&) = delete;

  // Issues `batch` items on the slot's stream (the caller's worker thread): inputs from the pinned
  // buffers, outputs back into theirs, then the slot's event. Wait() blocks until they are there.
  // With `frames` (checked by ParseFramePlan against this slot), the image input is made on the
  // device by the preprocessing kernel from the frame staging (1 byte per value).
  void Issue(int32_t batch, const FramePlan* frames = nullptr);
  // Copies the first `batch` items of the device image input back into its pinned buffer, so the
  // GPU preprocessing kernel's output can be compared with the CPU path (engine.readInput()).
  void IssueReadInput(int32_t batch);
  // Blocks until the issued work is done; throws its first error.
  void Wait();

  const std::shared_ptr<PinnedBuffer>& HostBuffer(size_t tensor) const { return host_[tensor]; }
  // The pinned uint8 frame staging, or nullptr when the slot was opened with frameBytes 0.
  const std::shared_ptr<PinnedBuffer>& FrameBuffer() const { return frames_; }
  GraphStatus Graph() const;

  // Set by the engine when an infer() is queued, cleared when its promise settles.
  std::atomic<bool> busy{false};

 private:
  void Release() noexcept;
  void IssueWork(int32_t batch, const FramePlan* frames);
  void SetShapes(int32_t batch);
  void EnqueueFrames(int32_t batch, const FramePlan& plan);
  // The enqueue, or the graph of it for this batch size (captured on the second run of a size).
  void EnqueueInference(int32_t batch);
  bool CaptureGraph(int32_t batch);
  void DropGraph() noexcept;
  void GiveUpGraphs(const std::string& why);
  void GrowDevice(void** buffer, size_t* have, size_t need);

  rt::GpuRuntime& runtime_;
  const std::vector<IoTensor>& io_;  // owned by the engine, which outlives its slots
  int32_t device_;
  int32_t shapeBatch_ = -1;  // the batch the context's input shapes are set for
  std::unique_ptr<rt::Context> context_;
  rt::Stream stream_ = nullptr;
  rt::Event done_ = nullptr;
  std::vector<void*> deviceBuffers_;
  std::vector<std::shared_ptr<PinnedBuffer>> host_;

  // GPU preprocessing (frameBytes > 0): frames go host staging -> deviceFrames_; the tables (lut,
  // then the resampling tables) through a pinned buffer to deviceTables_; the horizontal pass writes
  // deviceScratch_. The table and scratch buffers grow to the largest batch seen.
  int32_t imageInput_ = -1;
  std::shared_ptr<PinnedBuffer> frames_;
  void* deviceFrames_ = nullptr;
  std::shared_ptr<PinnedBuffer> hostTables_;
  void* deviceTables_ = nullptr;
  size_t deviceTablesBytes_ = 0;
  void* deviceScratch_ = nullptr;
  size_t deviceScratchBytes_ = 0;

  // A graph of the enqueue for the context's current input shapes. Only one: the shapes are baked
  // into the captured work, so a graph is dropped whenever setInputShape changes them.
  bool graphsEnabled_ = false;    // worker-thread state: cleared for good when a capture fails
  bool graphsRequested_ = false;  // the open option, fixed
  int32_t warmBatch_ = -1;        // a plain enqueue has run at this batch since the shapes were set
  int32_t graphBatch_ = -1;
  rt::Graph graph_ = nullptr;
  mutable std::mutex graphMutex_;  // guards graphFailure_ and the status copy read by JS
  std::string graphFailure_;
  std::atomic<int32_t> graphBatchSeen_{-1};
};

}  // namespace deimv2
