#include "context_slot.h"

#include <NvInferRuntime.h>

#include "cuda_check.h"

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

ContextSlot::ContextSlot(nvinfer1::ICudaEngine& engine, const std::vector<IoTensor>& io, int32_t device,
                         int32_t maxBatch, const TrtLogger& logger)
    : io_(io), logger_(logger), device_(device) {
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
  } catch (...) {
    Release();
    throw;
  }
}

ContextSlot::~ContextSlot() { Release(); }

void ContextSlot::Release() noexcept {
  // Destructors cannot report: a failure here means the device is already gone.
  if (stream_ != nullptr) static_cast<void>(cudaStreamSynchronize(stream_));
  context_.reset();
  for (void* buffer : deviceBuffers_) static_cast<void>(cudaFree(buffer));
  deviceBuffers_.clear();
  if (done_ != nullptr) static_cast<void>(cudaEventDestroy(done_));
  if (stream_ != nullptr) static_cast<void>(cudaStreamDestroy(stream_));
  done_ = nullptr;
  stream_ = nullptr;
  host_.clear();  // JS views keep their own references to the pinned memory
}

void ContextSlot::Run(int32_t batch) {
  // The current device is per thread, and libuv hands each job to any pool thread.
  DEIMV2_CUDA(cudaSetDevice(device_));
  for (size_t i = 0; i < io_.size(); ++i) {
    const IoTensor& tensor = io_[i];
    if (!tensor.isInput) continue;
    if (tensor.batched && batch != shapeBatch_) {
      nvinfer1::Dims dims = tensor.shape;
      dims.d[0] = batch;
      if (!context_->setInputShape(tensor.name.c_str(), dims)) {
        throw NativeError(TrtFailure(("IExecutionContext::setInputShape('" + tensor.name + "', batch " +
                                      std::to_string(batch) + ")").c_str(), logger_),
                          "ERR_TENSORRT");
      }
    }
    size_t bytes = tensor.elementSize * static_cast<size_t>(tensor.itemElements) *
                   static_cast<size_t>(tensor.batched ? batch : 1);
    DEIMV2_CUDA(cudaMemcpyAsync(deviceBuffers_[i], host_[i]->data(), bytes, cudaMemcpyHostToDevice, stream_));
  }
  shapeBatch_ = batch;
  if (!context_->enqueueV3(stream_)) {
    throw NativeError(TrtFailure("IExecutionContext::enqueueV3", logger_), "ERR_TENSORRT");
  }
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

}  // namespace deimv2
