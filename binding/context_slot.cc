#include "context_slot.h"

#include <algorithm>
#include <cstring>

namespace deimv2 {

namespace {

// Element size and TypedArray name of each type a pinned buffer can hold; {0, nullptr} otherwise.
std::pair<size_t, const char*> TypeInfo(rt::DType type) {
  switch (type) {
    case rt::DType::kFloat: return {4, "float32"};
    case rt::DType::kHalf: return {2, "float16"};
    case rt::DType::kBF16: return {2, "bfloat16"};
    case rt::DType::kInt8: return {1, "int8"};
    case rt::DType::kUInt8: return {1, "uint8"};
    case rt::DType::kBool: return {1, "bool"};
    case rt::DType::kInt32: return {4, "int32"};
    case rt::DType::kInt64: return {8, "int64"};
    default: return {0, nullptr};  // sub-byte and block-scaled types (INT4, FP4, E8M0), FP8
  }
}

size_t BatchBytes(const IoTensor& tensor, int32_t batch) {
  return tensor.elementSize * static_cast<size_t>(tensor.itemElements) * static_cast<size_t>(tensor.batched ? batch : 1);
}

}  // namespace

std::vector<IoTensor> DescribeIo(rt::Engine& engine) {
  std::vector<IoTensor> io;
  for (const rt::TensorInfo& info : engine.Tensors()) {
    IoTensor tensor;
    tensor.name = info.name;
    tensor.isInput = info.isInput;
    tensor.type = info.type;
    auto [size, name] = TypeInfo(info.type);
    if (name == nullptr) {
      throw NativeError("tensor '" + tensor.name + "' has a data type (" + std::to_string(info.rawType) +
                            ") that deimv2 cannot exchange with JavaScript",
                        "ERR_ENGINE_UNSUPPORTED");
    }
    tensor.elementSize = size;
    tensor.typeName = name;
    tensor.shape = info.shape;
    if (tensor.shape.rank < 0 || tensor.shape.rank > rt::kMaxRank) {
      throw NativeError("tensor '" + tensor.name + "' has an unknown rank", "ERR_ENGINE_UNSUPPORTED");
    }
    tensor.batched = tensor.shape.rank > 0 && tensor.shape.d[0] == -1;
    tensor.itemElements = 1;
    for (int32_t axis = tensor.batched ? 1 : 0; axis < tensor.shape.rank; ++axis) {
      if (tensor.shape.d[axis] < 0) {
        throw NativeError("tensor '" + tensor.name + "' has a dynamic axis " + std::to_string(axis) +
                              "; only the batch axis (0) may be dynamic",
                          "ERR_ENGINE_UNSUPPORTED");
      }
      tensor.itemElements *= tensor.shape.d[axis];
    }
    io.push_back(std::move(tensor));
  }
  return io;
}

int32_t FindImageInput(const std::vector<IoTensor>& io) {
  for (size_t i = 0; i < io.size(); ++i) {
    const IoTensor& t = io[i];
    if (t.isInput && t.type == rt::DType::kFloat && t.batched && t.shape.rank == 4 && t.shape.d[1] == 3 &&
        t.shape.d[2] > 0 && t.shape.d[2] == t.shape.d[3]) {
      return static_cast<int32_t>(i);
    }
  }
  return -1;
}

ContextSlot::ContextSlot(rt::GpuRuntime& runtime, rt::Engine& engine, const std::vector<IoTensor>& io, int32_t device,
                         int32_t maxBatch, const OpenOptions& options)
    : runtime_(runtime), io_(io), device_(device), graphsEnabled_(options.cudaGraphs), graphsRequested_(options.cudaGraphs) {
  try {
    runtime_.SetDevice(device_);
    context_ = engine.CreateContext();
    stream_ = runtime_.CreateStream();
    done_ = runtime_.CreateEvent();
    for (const IoTensor& tensor : io_) {
      size_t bytes = BatchBytes(tensor, maxBatch);
      if (bytes == 0) bytes = tensor.elementSize;  // a valid address even for empty tensors
      deviceBuffers_.push_back(runtime_.DeviceAlloc(bytes));
      host_.push_back(PinnedBuffer::Allocate(runtime_, bytes));
      // The device addresses never change, so they are bound once for the life of the context.
      if (!context_->SetTensorAddress(tensor.name, deviceBuffers_.back())) {
        throw NativeError("setTensorAddress('" + tensor.name + "') failed: " + context_->LastError(), "ERR_TENSORRT");
      }
    }
    imageInput_ = FindImageInput(io_);
    if (options.frameBytes > 0 && imageInput_ >= 0) {
      frames_ = PinnedBuffer::Allocate(runtime_, static_cast<size_t>(options.frameBytes));
      deviceFrames_ = runtime_.DeviceAlloc(static_cast<size_t>(options.frameBytes));
    }
  } catch (...) {
    Release();
    throw;
  }
}

ContextSlot::~ContextSlot() { Release(); }

void ContextSlot::Release() noexcept {
  // Teardown cannot report: a failure here means the device is already gone.
  if (stream_ != nullptr) runtime_.DrainStream(stream_);
  DropGraph();
  context_.reset();
  for (void* buffer : deviceBuffers_) runtime_.DeviceFree(buffer);
  deviceBuffers_.clear();
  for (void** buffer : {&deviceFrames_, &deviceTables_, &deviceScratch_}) {
    if (*buffer != nullptr) runtime_.DeviceFree(*buffer);
    *buffer = nullptr;
  }
  frames_.reset();
  hostTables_.reset();
  if (done_ != nullptr) runtime_.DestroyEvent(done_);
  if (stream_ != nullptr) runtime_.DestroyStream(stream_);
  done_ = nullptr;
  stream_ = nullptr;
  host_.clear();  // JS views keep their own references to the pinned memory
}

void ContextSlot::SetShapes(int32_t batch) {
  if (batch == shapeBatch_) return;
  DropGraph();
  warmBatch_ = -1;
  shapeBatch_ = -1;  // stays unknown if a call below fails
  for (const IoTensor& tensor : io_) {
    if (!tensor.isInput || !tensor.batched) continue;
    rt::Shape dims = tensor.shape;
    dims.d[0] = batch;
    if (!context_->SetInputShape(tensor.name, dims)) {
      throw NativeError("setInputShape('" + tensor.name + "', batch " + std::to_string(batch) + ") failed: " +
                            context_->LastError(),
                        "ERR_TENSORRT");
    }
  }
  shapeBatch_ = batch;
}

void ContextSlot::Issue(int32_t batch, const FramePlan* frames) {
  try {
    IssueWork(batch, frames);
  } catch (...) {
    // A failed issue may have queued part of the run: let it finish (errors dropped) so the slot
    // goes back quiescent and its pinned buffers are the caller's again.
    if (stream_ != nullptr) runtime_.DrainStream(stream_);
    throw;
  }
}

void ContextSlot::IssueWork(int32_t batch, const FramePlan* frames) {
  // The current device is per thread, and libuv hands each job to any pool thread.
  runtime_.SetDevice(device_);
  SetShapes(batch);
  for (size_t i = 0; i < io_.size(); ++i) {
    const IoTensor& tensor = io_[i];
    if (!tensor.isInput) continue;
    if (frames != nullptr && static_cast<int32_t>(i) == imageInput_) continue;  // written by the kernel
    runtime_.CopyToDevice(deviceBuffers_[i], host_[i]->data(), BatchBytes(tensor, batch), stream_);
  }
  if (frames != nullptr) EnqueueFrames(batch, *frames);
  EnqueueInference(batch);
  for (size_t i = 0; i < io_.size(); ++i) {
    const IoTensor& tensor = io_[i];
    if (tensor.isInput) continue;
    rt::Shape dims = context_->TensorShape(tensor.name);
    size_t elements = 1;
    for (int32_t axis = 0; axis < dims.rank; ++axis) {
      if (dims.d[axis] < 0) {
        throw NativeError("output '" + tensor.name + "' has an unresolved shape after setInputShape", "ERR_TENSORRT");
      }
      elements *= static_cast<size_t>(dims.d[axis]);
    }
    size_t bytes = elements * tensor.elementSize;
    if (bytes > host_[i]->size()) {
      throw NativeError("output '" + tensor.name + "' needs " + std::to_string(bytes) + " bytes but its buffer holds " +
                            std::to_string(host_[i]->size()),
                        "ERR_TENSORRT");
    }
    runtime_.CopyToHost(host_[i]->data(), deviceBuffers_[i], bytes, stream_);
  }
  runtime_.RecordEvent(done_, stream_);
}

void ContextSlot::IssueReadInput(int32_t batch) {
  runtime_.SetDevice(device_);
  if (imageInput_ < 0) throw NativeError("this engine has no float32 [N,3,S,S] input", "ERR_UNSUPPORTED");
  const size_t i = static_cast<size_t>(imageInput_);
  runtime_.CopyToHost(host_[i]->data(), deviceBuffers_[i], BatchBytes(io_[i], batch), stream_);
  runtime_.RecordEvent(done_, stream_);
}

void ContextSlot::Wait() {
  runtime_.SetDevice(device_);
  runtime_.WaitEvent(done_);
}

void ContextSlot::GrowDevice(void** buffer, size_t* have, size_t need) {
  if (*have >= need) return;
  // The previous run of this slot has finished (its event was waited for), so the old buffer is free.
  if (*buffer != nullptr) runtime_.DeviceFree(*buffer);
  *buffer = nullptr;
  *have = 0;
  *buffer = runtime_.DeviceAlloc(need);
  *have = need;
}

void ContextSlot::EnqueueFrames(int32_t batch, const FramePlan& plan) {
  if (!frames_ || imageInput_ < 0) {
    throw NativeError("this engine was opened without frame staging (frameBytes 0) or has no [N,3,S,S] float32 input",
                      "ERR_UNSUPPORTED");
  }
  const IoTensor& image = io_[static_cast<size_t>(imageInput_)];
  const int32_t side = static_cast<int32_t>(image.shape.d[2]);

  // One upload of the small tables (lut first, then the resampling tables) through pinned memory.
  const size_t tableBytes = (kLutSize + plan.tables.size()) * sizeof(int32_t);
  if (!hostTables_ || hostTables_->size() < tableBytes) {
    hostTables_.reset();
    hostTables_ = PinnedBuffer::Allocate(runtime_, tableBytes);
  }
  GrowDevice(&deviceTables_, &deviceTablesBytes_, tableBytes);
  auto* words = static_cast<unsigned char*>(hostTables_->data());
  std::memcpy(words, plan.lut.data(), kLutSize * sizeof(float));
  if (!plan.tables.empty()) {
    std::memcpy(words + kLutSize * sizeof(float), plan.tables.data(), plan.tables.size() * sizeof(int32_t));
  }
  runtime_.CopyToDevice(deviceTables_, hostTables_->data(), tableBytes, stream_);
  runtime_.CopyToDevice(deviceFrames_, frames_->data(), plan.frameBytesUsed, stream_);

  size_t scratchBytes = 1;
  for (const FrameItem& item : plan.items) {
    scratchBytes = std::max(scratchBytes, static_cast<size_t>(item.srcHeight) * static_cast<size_t>(item.outWidth) * 3);
  }
  GrowDevice(&deviceScratch_, &deviceScratchBytes_, scratchBytes);

  const auto* lut = static_cast<const float*>(deviceTables_);
  const int32_t* tables = static_cast<const int32_t*>(deviceTables_) + kLutSize;
  const size_t itemFloats = 3 * static_cast<size_t>(side) * static_cast<size_t>(side);
  auto* input = static_cast<float*>(deviceBuffers_[static_cast<size_t>(imageInput_)]);
  // One scratch for all images: the stream runs image i's passes before image i + 1's.
  for (int32_t i = 0; i < batch; ++i) {
    const FrameItem& item = plan.items[static_cast<size_t>(i)];
    PreprocessPlan pre;
    pre.srcWidth = item.srcWidth;
    pre.srcHeight = item.srcHeight;
    pre.srcStride = item.srcStride;
    pre.horizontal.bounds = tables + item.hTable;
    pre.horizontal.coeffs = tables + item.hTable + 2 * item.outWidth;
    pre.horizontal.taps = item.hTaps;
    pre.horizontal.outSize = item.outWidth;
    pre.vertical.bounds = tables + item.vTable;
    pre.vertical.coeffs = tables + item.vTable + 2 * item.outHeight;
    pre.vertical.taps = item.vTaps;
    pre.vertical.outSize = item.outHeight;
    pre.planeWidth = side;
    pre.planeHeight = side;
    pre.offsetX = item.offsetX;
    pre.offsetY = item.offsetY;
    pre.lut = lut;
    runtime_.Preprocess(pre, static_cast<const uint8_t*>(deviceFrames_) + item.frameOffset,
                        static_cast<uint8_t*>(deviceScratch_), input + static_cast<size_t>(i) * itemFloats, stream_);
  }
}

void ContextSlot::EnqueueInference(int32_t batch) {
  if (graph_ != nullptr && graphBatch_ == batch) {
    runtime_.LaunchGraph(graph_, stream_);
    return;
  }
  // TensorRT wants one plain enqueueV3 after the shapes change before a capture (it flushes deferred
  // shape work there), so the graph is made on the second run of a batch size.
  if (graphsEnabled_ && warmBatch_ == batch && CaptureGraph(batch)) {
    runtime_.LaunchGraph(graph_, stream_);
    return;
  }
  if (!context_->Enqueue(stream_)) {
    throw NativeError("enqueueV3 failed: " + context_->LastError(), "ERR_TENSORRT");
  }
  warmBatch_ = batch;
}

bool ContextSlot::CaptureGraph(int32_t batch) {
  std::string why;
  rt::Graph graph = runtime_.CaptureGraph(stream_, [this] { return context_->Enqueue(stream_); }, &why);
  if (graph == nullptr) {
    GiveUpGraphs(why);
    return false;
  }
  graph_ = graph;
  graphBatch_ = batch;
  graphBatchSeen_.store(batch);
  return true;
}

void ContextSlot::DropGraph() noexcept {
  if (graph_ != nullptr) runtime_.DestroyGraph(graph_);
  graph_ = nullptr;
  graphBatch_ = -1;
  graphBatchSeen_.store(-1);
}

void ContextSlot::GiveUpGraphs(const std::string& why) {
  // Graphs are an optimisation: the slot goes on with plain enqueues and says why for engine.cudaGraphs.
  graphsEnabled_ = false;
  std::lock_guard<std::mutex> lock(graphMutex_);
  graphFailure_ = why;
}

GraphStatus ContextSlot::Graph() const {
  GraphStatus status;
  std::lock_guard<std::mutex> lock(graphMutex_);
  status.failure = graphFailure_;
  status.enabled = graphFailure_.empty() && graphsRequested_;
  status.batch = graphBatchSeen_.load();
  return status;
}

}  // namespace deimv2
