#include "context_slot.h"

#include <NvInferRuntime.h>

#include <algorithm>
#include <cstring>

#include "cuda_check.h"
#include "preprocess.h"

// CMakeLists.txt defines it as 0 when nvcc was not found; the compile check leaves it undefined and
// so checks the code that calls the kernel too.
#ifndef DEIMV2_WITH_CUDA_KERNELS
#define DEIMV2_WITH_CUDA_KERNELS 1
#endif

namespace deimv2 {

namespace {

// Element size and TypedArray name of each type a pinned buffer can hold; {0, nullptr} otherwise.
std::pair<size_t, const char*> TypeInfo(nvinfer1::DataType type) {
  switch (type) {
    case nvinfer1::DataType::kFLOAT: return {4, "float32"};
    case nvinfer1::DataType::kHALF: return {2, "float16"};
    case nvinfer1::DataType::kBF16: return {2, "bfloat16"};
    case nvinfer1::DataType::kINT8: return {1, "int8"};
    case nvinfer1::DataType::kUINT8: return {1, "uint8"};
    case nvinfer1::DataType::kBOOL: return {1, "bool"};
    case nvinfer1::DataType::kINT32: return {4, "int32"};
    case nvinfer1::DataType::kINT64: return {8, "int64"};
    default: return {0, nullptr};  // sub-byte and block-scaled types (INT4, FP4, E8M0), FP8
  }
}

}  // namespace

std::vector<IoTensor> DescribeIo(const nvinfer1::ICudaEngine& engine) {
  std::vector<IoTensor> io;
  const int32_t count = engine.getNbIOTensors();
  for (int32_t i = 0; i < count; ++i) {
    IoTensor tensor;
    tensor.name = engine.getIOTensorName(i);
    tensor.isInput = engine.getTensorIOMode(tensor.name.c_str()) == nvinfer1::TensorIOMode::kINPUT;
    tensor.type = engine.getTensorDataType(tensor.name.c_str());
    auto [size, name] = TypeInfo(tensor.type);
    if (name == nullptr) {
      throw NativeError("tensor '" + tensor.name + "' has a data type (" + std::to_string(static_cast<int>(tensor.type)) +
                            ") that deimv2 cannot exchange with JavaScript",
                        "ERR_ENGINE_UNSUPPORTED");
    }
    tensor.elementSize = size;
    tensor.typeName = name;
    tensor.shape = engine.getTensorShape(tensor.name.c_str());
    if (tensor.shape.nbDims < 0) {
      throw NativeError("tensor '" + tensor.name + "' has an unknown rank", "ERR_ENGINE_UNSUPPORTED");
    }
    tensor.batched = tensor.shape.nbDims > 0 && tensor.shape.d[0] == -1;
    tensor.itemElements = 1;
    for (int32_t axis = tensor.batched ? 1 : 0; axis < tensor.shape.nbDims; ++axis) {
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
    if (t.isInput && t.type == nvinfer1::DataType::kFLOAT && t.batched && t.shape.nbDims == 4 && t.shape.d[1] == 3 &&
        t.shape.d[2] > 0 && t.shape.d[2] == t.shape.d[3]) {
      return static_cast<int32_t>(i);
    }
  }
  return -1;
}

ContextSlot::ContextSlot(nvinfer1::ICudaEngine& engine, const std::vector<IoTensor>& io, int32_t device,
                         int32_t maxBatch, const OpenOptions& options, const TrtLogger& logger)
    : io_(io), logger_(logger), device_(device), graphsEnabled_(options.cudaGraphs), graphsRequested_(options.cudaGraphs) {
  try {
    DEIMV2_CUDA(cudaSetDevice(device_));
    context_.reset(engine.createExecutionContext());
    if (!context_) throw NativeError(TrtFailure("ICudaEngine::createExecutionContext", logger_), "ERR_TENSORRT");
    // Non-blocking: the slot's copies and kernels never wait for the legacy default stream, so the
    // slots of the pool overlap. Blocking-sync event: the waiting worker thread sleeps, not spins.
    DEIMV2_CUDA(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    DEIMV2_CUDA(cudaEventCreateWithFlags(&done_, cudaEventBlockingSync | cudaEventDisableTiming));
    for (const IoTensor& tensor : io_) {
      size_t bytes = tensor.elementSize * static_cast<size_t>(tensor.itemElements) *
                     static_cast<size_t>(tensor.batched ? maxBatch : 1);
      if (bytes == 0) bytes = tensor.elementSize;  // TensorRT wants a valid address even for empty tensors
      void* deviceBuffer = nullptr;
      DEIMV2_CUDA(cudaMalloc(&deviceBuffer, bytes));
      deviceBuffers_.push_back(deviceBuffer);
      host_.push_back(PinnedBuffer::Allocate(bytes));
      // The device addresses never change, so they are bound once for the life of the context.
      if (!context_->setTensorAddress(tensor.name.c_str(), deviceBuffer)) {
        throw NativeError(TrtFailure(("IExecutionContext::setTensorAddress('" + tensor.name + "')").c_str(), logger_),
                          "ERR_TENSORRT");
      }
    }
    imageInput_ = FindImageInput(io_);
    if (options.frameBytes > 0 && imageInput_ >= 0) {
      frames_ = PinnedBuffer::Allocate(static_cast<size_t>(options.frameBytes));
      DEIMV2_CUDA(cudaMalloc(&deviceFrames_, static_cast<size_t>(options.frameBytes)));
    }
  } catch (...) {
    Release();
    throw;
  }
}

ContextSlot::~ContextSlot() { Release(); }

void ContextSlot::Release() noexcept {
  // Destructors cannot report: a failure here means the device is already gone.
  if (stream_ != nullptr) static_cast<void>(cudaStreamSynchronize(stream_));
  DropGraph();
  context_.reset();
  for (void* buffer : deviceBuffers_) static_cast<void>(cudaFree(buffer));
  deviceBuffers_.clear();
  for (void** buffer : {&deviceFrames_, &deviceTables_, &deviceScratch_}) {
    if (*buffer != nullptr) static_cast<void>(cudaFree(*buffer));
    *buffer = nullptr;
  }
  frames_.reset();
  hostTables_.reset();
  if (done_ != nullptr) static_cast<void>(cudaEventDestroy(done_));
  if (stream_ != nullptr) static_cast<void>(cudaStreamDestroy(stream_));
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
    nvinfer1::Dims dims = tensor.shape;
    dims.d[0] = batch;
    if (!context_->setInputShape(tensor.name.c_str(), dims)) {
      throw NativeError(TrtFailure(("IExecutionContext::setInputShape('" + tensor.name + "', batch " +
                                    std::to_string(batch) + ")").c_str(), logger_),
                        "ERR_TENSORRT");
    }
  }
  shapeBatch_ = batch;
}

void ContextSlot::Run(int32_t batch, const FramePlan* frames) {
  // The current device is per thread, and libuv hands each job to any pool thread.
  DEIMV2_CUDA(cudaSetDevice(device_));
  SetShapes(batch);
  for (size_t i = 0; i < io_.size(); ++i) {
    const IoTensor& tensor = io_[i];
    if (!tensor.isInput) continue;
    if (frames != nullptr && static_cast<int32_t>(i) == imageInput_) continue;  // written by the kernel
    size_t bytes = tensor.elementSize * static_cast<size_t>(tensor.itemElements) *
                   static_cast<size_t>(tensor.batched ? batch : 1);
    DEIMV2_CUDA(cudaMemcpyAsync(deviceBuffers_[i], host_[i]->data(), bytes, cudaMemcpyHostToDevice, stream_));
  }
  if (frames != nullptr) EnqueueFrames(batch, *frames);
  EnqueueInference(batch);
  for (size_t i = 0; i < io_.size(); ++i) {
    const IoTensor& tensor = io_[i];
    if (tensor.isInput) continue;
    nvinfer1::Dims dims = context_->getTensorShape(tensor.name.c_str());
    size_t elements = 1;
    for (int32_t axis = 0; axis < dims.nbDims; ++axis) {
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
    DEIMV2_CUDA(cudaMemcpyAsync(host_[i]->data(), deviceBuffers_[i], bytes, cudaMemcpyDeviceToHost, stream_));
  }
  DEIMV2_CUDA(cudaEventRecord(done_, stream_));
  DEIMV2_CUDA(cudaEventSynchronize(done_));
}

void ContextSlot::DownloadImageInput(int32_t batch) {
  DEIMV2_CUDA(cudaSetDevice(device_));
  if (imageInput_ < 0) throw NativeError("this engine has no float32 [N,3,S,S] input", "ERR_UNSUPPORTED");
  const size_t i = static_cast<size_t>(imageInput_);
  const size_t bytes = io_[i].elementSize * static_cast<size_t>(io_[i].itemElements) * static_cast<size_t>(batch);
  DEIMV2_CUDA(cudaMemcpyAsync(host_[i]->data(), deviceBuffers_[i], bytes, cudaMemcpyDeviceToHost, stream_));
  DEIMV2_CUDA(cudaEventRecord(done_, stream_));
  DEIMV2_CUDA(cudaEventSynchronize(done_));
}

void ContextSlot::EnqueueFrames(int32_t batch, const FramePlan& plan) {
#if DEIMV2_WITH_CUDA_KERNELS
  if (!frames_ || imageInput_ < 0) {
    throw NativeError("this engine was opened without frame staging (frameBytes 0) or has no [N,3,S,S] float32 input",
                      "ERR_UNSUPPORTED");
  }
  const IoTensor& image = io_[static_cast<size_t>(imageInput_)];
  const int32_t side = static_cast<int32_t>(image.shape.d[2]);

  // One upload of the small tables (lut first, then the resampling tables) through pinned memory. The
  // previous run of this slot has finished (Run waits for its event), so the buffers are free to reuse.
  const size_t tableBytes = (kLutSize + plan.tables.size()) * sizeof(int32_t);
  if (!hostTables_ || hostTables_->size() < tableBytes) {
    hostTables_.reset();
    hostTables_ = PinnedBuffer::Allocate(tableBytes);
  }
  if (deviceTablesBytes_ < tableBytes) {
    if (deviceTables_ != nullptr) DEIMV2_CUDA(cudaFree(deviceTables_));
    deviceTables_ = nullptr;
    deviceTablesBytes_ = 0;
    DEIMV2_CUDA(cudaMalloc(&deviceTables_, tableBytes));
    deviceTablesBytes_ = tableBytes;
  }
  auto* words = static_cast<unsigned char*>(hostTables_->data());
  std::memcpy(words, plan.lut.data(), kLutSize * sizeof(float));
  if (!plan.tables.empty()) {
    std::memcpy(words + kLutSize * sizeof(float), plan.tables.data(), plan.tables.size() * sizeof(int32_t));
  }
  DEIMV2_CUDA(cudaMemcpyAsync(deviceTables_, hostTables_->data(), tableBytes, cudaMemcpyHostToDevice, stream_));
  DEIMV2_CUDA(cudaMemcpyAsync(deviceFrames_, frames_->data(), plan.frameBytesUsed, cudaMemcpyHostToDevice, stream_));

  size_t scratchBytes = 1;
  for (const FrameItem& item : plan.items) {
    scratchBytes = std::max(scratchBytes, static_cast<size_t>(item.srcHeight) * static_cast<size_t>(item.outWidth) * 3);
  }
  if (deviceScratchBytes_ < scratchBytes) {
    if (deviceScratch_ != nullptr) DEIMV2_CUDA(cudaFree(deviceScratch_));
    deviceScratch_ = nullptr;
    deviceScratchBytes_ = 0;
    DEIMV2_CUDA(cudaMalloc(&deviceScratch_, scratchBytes));
    deviceScratchBytes_ = scratchBytes;
  }

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
    DEIMV2_CUDA(EnqueuePreprocess(pre, static_cast<const uint8_t*>(deviceFrames_) + item.frameOffset,
                                  static_cast<uint8_t*>(deviceScratch_), input + static_cast<size_t>(i) * itemFloats, stream_));
  }
#else
  static_cast<void>(batch);
  static_cast<void>(plan);
  throw NativeError("the addon was built without the CUDA preprocessing kernel (nvcc was not found)", "ERR_UNSUPPORTED");
#endif
}

void ContextSlot::EnqueueInference(int32_t batch) {
  if (graphExec_ != nullptr && graphBatch_ == batch) {
    DEIMV2_CUDA(cudaGraphLaunch(graphExec_, stream_));
    return;
  }
  // TensorRT wants one plain enqueueV3 after the shapes change before a capture (it flushes deferred
  // shape work there), so the graph is made on the second run of a batch size.
  if (graphsEnabled_ && warmBatch_ == batch && CaptureGraph(batch)) {
    DEIMV2_CUDA(cudaGraphLaunch(graphExec_, stream_));
    return;
  }
  if (!context_->enqueueV3(stream_)) {
    throw NativeError(TrtFailure("IExecutionContext::enqueueV3", logger_), "ERR_TENSORRT");
  }
  warmBatch_ = batch;
}

bool ContextSlot::CaptureGraph(int32_t batch) {
  // Thread-local capture: other slots' worker threads keep calling CUDA freely meanwhile.
  cudaError_t status = cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal);
  if (status != cudaSuccess) {
    static_cast<void>(cudaGetLastError());
    GiveUpGraphs(std::string("cudaStreamBeginCapture failed: ") + cudaGetErrorName(status));
    return false;
  }
  const bool enqueued = context_->enqueueV3(stream_);
  cudaGraph_t graph = nullptr;
  status = cudaStreamEndCapture(stream_, &graph);
  if (!enqueued || status != cudaSuccess || graph == nullptr) {
    if (graph != nullptr) static_cast<void>(cudaGraphDestroy(graph));
    static_cast<void>(cudaGetLastError());  // capture errors are not sticky; clear the last-error slot
    GiveUpGraphs(!enqueued ? TrtFailure("IExecutionContext::enqueueV3 under stream capture", logger_)
                           : std::string("cudaStreamEndCapture failed: ") + cudaGetErrorName(status));
    return false;
  }
  cudaGraphExec_t exec = nullptr;
  status = cudaGraphInstantiate(&exec, graph, 0);
  static_cast<void>(cudaGraphDestroy(graph));
  if (status != cudaSuccess) {
    static_cast<void>(cudaGetLastError());
    GiveUpGraphs(std::string("cudaGraphInstantiate failed: ") + cudaGetErrorName(status));
    return false;
  }
  graphExec_ = exec;
  graphBatch_ = batch;
  graphBatchSeen_.store(batch);
  return true;
}

void ContextSlot::DropGraph() noexcept {
  if (graphExec_ != nullptr) static_cast<void>(cudaGraphExecDestroy(graphExec_));
  graphExec_ = nullptr;
  graphBatch_ = -1;
  graphBatchSeen_.store(-1);
}

void ContextSlot::GiveUpGraphs(const std::string& why) {
  // Graphs are an optimisation: the slot goes on with plain enqueueV3 and says why for engine.cudaGraphs.
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
