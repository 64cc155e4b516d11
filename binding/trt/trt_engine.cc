#include "trt/trt_engine.h"

#include <NvInferRuntime.h>

#include "trt/trt_common.h"

namespace deimv2 {
namespace trt {

namespace {

rt::DType FromTrt(nvinfer1::DataType type) {
  switch (type) {
    case nvinfer1::DataType::kFLOAT: return rt::DType::kFloat;
    case nvinfer1::DataType::kHALF: return rt::DType::kHalf;
    case nvinfer1::DataType::kBF16: return rt::DType::kBF16;
    case nvinfer1::DataType::kINT8: return rt::DType::kInt8;
    case nvinfer1::DataType::kUINT8: return rt::DType::kUInt8;
    case nvinfer1::DataType::kBOOL: return rt::DType::kBool;
    case nvinfer1::DataType::kINT32: return rt::DType::kInt32;
    case nvinfer1::DataType::kINT64: return rt::DType::kInt64;
    default: return rt::DType::kOther;  // sub-byte and block-scaled types (INT4, FP4, E8M0), FP8
  }
}

rt::Shape FromDims(const nvinfer1::Dims& dims) {
  rt::Shape shape;
  shape.rank = dims.nbDims;
  for (int32_t i = 0; i < dims.nbDims && i < rt::kMaxRank; ++i) shape.d[i] = dims.d[i];
  if (dims.nbDims > rt::kMaxRank) shape.rank = -1;
  return shape;
}

nvinfer1::Dims ToDims(const rt::Shape& shape) {
  nvinfer1::Dims dims{};
  dims.nbDims = shape.rank;
  for (int32_t i = 0; i < shape.rank && i < nvinfer1::Dims::MAX_DIMS; ++i) dims.d[i] = shape.d[i];
  return dims;
}

class TrtContext : public rt::Context {
 public:
  explicit TrtContext(nvinfer1::IExecutionContext* context) : context_(context) {
    if (context_) context_->setErrorRecorder(&recorder_);
  }
  bool SetInputShape(const std::string& name, const rt::Shape& shape) override {
    return context_->setInputShape(name.c_str(), ToDims(shape));
  }
  rt::Shape TensorShape(const std::string& name) override { return FromDims(context_->getTensorShape(name.c_str())); }
  bool SetTensorAddress(const std::string& name, void* address) override {
    return context_->setTensorAddress(name.c_str(), address);
  }
  bool Enqueue(rt::Stream stream) override { return context_->enqueueV3(static_cast<cudaStream_t>(stream)); }
  std::string LastError() override {
    std::string error = recorder_.Take();
    return error.empty() ? "TensorRT gave no reason" : error;
  }

 private:
  // The recorder outlives the context that reports to it (members go in reverse order).
  ErrorRecorder recorder_;
  std::unique_ptr<nvinfer1::IExecutionContext> context_;
};

// The logger outlives the runtime, which outlives the engine (members destroyed in reverse order).
class TrtEngine : public rt::Engine {
 public:
  std::vector<rt::TensorInfo> Tensors() override {
    std::vector<rt::TensorInfo> out;
    const int32_t count = engine->getNbIOTensors();
    for (int32_t i = 0; i < count; ++i) {
      rt::TensorInfo tensor;
      tensor.name = engine->getIOTensorName(i);
      tensor.isInput = engine->getTensorIOMode(tensor.name.c_str()) == nvinfer1::TensorIOMode::kINPUT;
      nvinfer1::DataType type = engine->getTensorDataType(tensor.name.c_str());
      tensor.type = FromTrt(type);
      tensor.rawType = static_cast<int32_t>(type);
      tensor.shape = FromDims(engine->getTensorShape(tensor.name.c_str()));
      out.push_back(std::move(tensor));
    }
    return out;
  }
  void ProfileShapes(const std::string& input, rt::Shape* min, rt::Shape* opt, rt::Shape* max) override {
    *min = FromDims(engine->getProfileShape(input.c_str(), 0, nvinfer1::OptProfileSelector::kMIN));
    *opt = FromDims(engine->getProfileShape(input.c_str(), 0, nvinfer1::OptProfileSelector::kOPT));
    *max = FromDims(engine->getProfileShape(input.c_str(), 0, nvinfer1::OptProfileSelector::kMAX));
  }
  std::unique_ptr<rt::Context> CreateContext() override {
    nvinfer1::IExecutionContext* context = engine->createExecutionContext();
    if (context == nullptr) throw NativeError(Failure("ICudaEngine::createExecutionContext", logger.LastError()), "ERR_TENSORRT");
    return std::make_unique<TrtContext>(context);
  }

  Logger logger;
  std::unique_ptr<nvinfer1::IRuntime> runtime;
  std::unique_ptr<nvinfer1::ICudaEngine> engine;
};

}  // namespace

std::unique_ptr<rt::Engine> Deserialize(const std::vector<char>& bytes, const std::string& path) {
  auto loaded = std::make_unique<TrtEngine>();
  loaded->runtime.reset(nvinfer1::createInferRuntime(loaded->logger));
  if (!loaded->runtime) throw NativeError(Failure("createInferRuntime", loaded->logger.LastError()), "ERR_TENSORRT");
  loaded->engine.reset(loaded->runtime->deserializeCudaEngine(bytes.data(), bytes.size()));
  if (!loaded->engine) {
    // Corrupt or truncated files and engines from another TensorRT version or GPU all end here; the
    // TypeScript cache rebuilds on this code.
    throw NativeError(Failure(("IRuntime::deserializeCudaEngine(" + path + ")").c_str(), loaded->logger.LastError()),
                      "ERR_ENGINE_INVALID");
  }
  return loaded;
}

}  // namespace trt
}  // namespace deimv2
