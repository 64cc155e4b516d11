// The TensorRT + CUDA runtime: a thin adapter from rt::GpuRuntime to the CUDA runtime API and
// TensorRT (builder, ONNX parser). Compiled only where TensorRT was found.
#include <NvInfer.h>
#include <NvOnnxParser.h>
#include <cuda_runtime_api.h>

#include <cstdio>
#include <fstream>
#include <iterator>

#include "options.h"
#include "runtime/gpu_runtime.h"
#include "trt/trt_common.h"
#include "trt/trt_engine.h"
#include "cuda/cuda_runtime.h"


namespace deimv2 {
namespace trt {

namespace {

std::string LibraryVersion() {
  // getInferLibVersion() is the library actually loaded: major * 10000 + minor * 100 + patch.
  int32_t version = getInferLibVersion();
  return std::to_string(version / 10000) + "." + std::to_string((version / 100) % 100) + "." + std::to_string(version % 100);
}

std::vector<char> ReadOptionalFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return {};
  return std::vector<char>((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
}

std::string ParserErrors(const nvonnxparser::IParser& parser) {
  std::string text;
  for (int32_t i = 0; i < parser.getNbErrors(); ++i) {
    const nvonnxparser::IParserError* error = parser.getError(i);
    if (error == nullptr) continue;
    if (!text.empty()) text += "; ";
    text += error->desc() != nullptr ? error->desc() : "unknown parser error";
    if (error->node() >= 0) {
      const char* name = error->nodeName();
      const char* op = error->nodeOperator();
      text += " (node " + std::to_string(error->node()) + " " + (name != nullptr ? name : "") + ", " + (op != nullptr ? op : "") + ")";
    }
  }
  return text;
}

// TensorRT's IProgressMonitor on rt::BuildMonitor; stepComplete returning false cancels the build.
class ProgressMonitor : public nvinfer1::IProgressMonitor {
 public:
  explicit ProgressMonitor(rt::BuildMonitor& monitor) : monitor_(monitor) {}
  void phaseStart(char const* phaseName, char const* parentPhase, int32_t nbSteps) noexcept override {
    monitor_.Phase(0, phaseName, parentPhase, 0, nbSteps);
  }
  bool stepComplete(char const* phaseName, int32_t step) noexcept override {
    monitor_.Phase(1, phaseName, nullptr, step, 0);
    return !monitor_.Cancelled();
  }
  void phaseFinish(char const* phaseName) noexcept override { monitor_.Phase(2, phaseName, nullptr, 0, 0); }

 private:
  rt::BuildMonitor& monitor_;
};

class TrtRuntime : public cuda::CudaRuntime {
 public:
  const char* Name() const override { return "tensorrt"; }
  std::string Version() override { return LibraryVersion(); }

  std::unique_ptr<rt::Engine> Deserialize(const std::vector<char>& bytes, const std::string& path) override {
    return trt::Deserialize(bytes, path);
  }

  rt::BuildOutput Build(const BuildOptions& options, rt::BuildMonitor& monitor) override;
};

rt::BuildOutput TrtRuntime::Build(const BuildOptions& options, rt::BuildMonitor& monitor) {
  Logger logger;  // outlives every TensorRT object below (declared first, destroyed last)
  // The timing cache must outlive the builder config that uses it (NvInfer.h): declared before them.
  std::unique_ptr<nvinfer1::ITimingCache> timingCache;

  std::unique_ptr<nvinfer1::IBuilder> builder(nvinfer1::createInferBuilder(logger));
  if (!builder) throw NativeError(Failure("createInferBuilder", logger.LastError()), "ERR_TENSORRT");

  // TensorRT 11 networks are always strongly typed (the flag is deprecated and ignored). TensorRT 10
  // takes it as a creation flag; without it the builder picks precisions from the BuilderFlags.
  nvinfer1::NetworkDefinitionCreationFlags flags = 0;
#if NV_TENSORRT_MAJOR < 11
  if (options.stronglyTyped) flags |= 1U << static_cast<uint32_t>(nvinfer1::NetworkDefinitionCreationFlag::kSTRONGLY_TYPED);
#endif
  std::unique_ptr<nvinfer1::INetworkDefinition> network(builder->createNetworkV2(flags));
  if (!network) throw NativeError(Failure("IBuilder::createNetworkV2", logger.LastError()), "ERR_TENSORRT");

  std::unique_ptr<nvonnxparser::IParser> parser(nvonnxparser::createParser(*network, logger));
  if (!parser) throw NativeError(Failure("nvonnxparser::createParser", logger.LastError()), "ERR_TENSORRT");
  if (!parser->parseFromFile(options.onnxPath.c_str(), static_cast<int>(nvinfer1::ILogger::Severity::kWARNING))) {
    throw NativeError("IParser::parseFromFile(" + options.onnxPath + ") failed: " + ParserErrors(*parser), "ERR_MODEL_INVALID");
  }

  std::unique_ptr<nvinfer1::IBuilderConfig> config(builder->createBuilderConfig());
  if (!config) throw NativeError(Failure("IBuilder::createBuilderConfig", logger.LastError()), "ERR_TENSORRT");
  if (options.workspaceBytes > 0) {
    config->setMemoryPoolLimit(nvinfer1::MemoryPoolType::kWORKSPACE, static_cast<size_t>(options.workspaceBytes));
  }
  if (options.fp16 && !options.stronglyTyped) {
#if NV_TENSORRT_MAJOR >= 11
    throw NativeError("TensorRT 11 builds strongly typed networks only: an FP16 engine needs the FP16 graph made by "
                      "`deimv2 prepare --precision fp16`",
                      "ERR_INVALID_ARGUMENT");
#else
    // Weakly typed FP16: deprecated since TensorRT 10.12 in favour of strong typing, still the way to
    // get FP16 kernels out of an FP32 graph on 10.x.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    config->setFlag(nvinfer1::BuilderFlag::kFP16);
#pragma GCC diagnostic pop
#endif
  }

  // Dynamic batch: every input whose axis 0 is -1 gets min/opt/max; any other dynamic axis is an error.
  nvinfer1::IOptimizationProfile* profile = builder->createOptimizationProfile();  // owned by the builder
  bool dynamicBatch = false;
  for (int32_t i = 0; i < network->getNbInputs(); ++i) {
    nvinfer1::ITensor* input = network->getInput(i);
    nvinfer1::Dims dims = input->getDimensions();
    for (int32_t axis = 1; axis < dims.nbDims; ++axis) {
      if (dims.d[axis] < 0) {
        throw NativeError(std::string("input '") + input->getName() + "' has a dynamic axis " + std::to_string(axis) +
                              "; only the batch axis may be dynamic",
                          "ERR_MODEL_INVALID");
      }
    }
    if (dims.nbDims == 0 || dims.d[0] >= 0) continue;
    dynamicBatch = true;
    const std::pair<nvinfer1::OptProfileSelector, int32_t> sizes[] = {{nvinfer1::OptProfileSelector::kMIN, options.minBatch},
                                                                       {nvinfer1::OptProfileSelector::kOPT, options.optBatch},
                                                                       {nvinfer1::OptProfileSelector::kMAX, options.maxBatch}};
    for (const auto& [selector, batch] : sizes) {
      dims.d[0] = batch;
      if (!profile->setDimensions(input->getName(), selector, dims)) {
        throw NativeError(Failure("IOptimizationProfile::setDimensions", logger.LastError()), "ERR_TENSORRT");
      }
    }
  }
  if (dynamicBatch && config->addOptimizationProfile(profile) < 0) {
    throw NativeError(Failure("IBuilderConfig::addOptimizationProfile", logger.LastError()), "ERR_TENSORRT");
  }
  if (!dynamicBatch && options.maxBatch > 1) {
    throw NativeError("the graph has a fixed batch size; export it with a dynamic batch axis to build for batch " +
                          std::to_string(options.maxBatch),
                      "ERR_MODEL_INVALID");
  }

  rt::BuildOutput output;
  // Timing cache: reused across builds (kernel timings are the slow part), written back afterwards.
  // setTimingCache refuses a cache from another device (returns false): start with an empty cache
  // then, instead of failing this and every later build on the same bad file.
  if (!options.timingCachePath.empty()) {
    std::vector<char> blob = ReadOptionalFile(options.timingCachePath);
    timingCache.reset(config->createTimingCache(blob.data(), blob.size()));
    if (!timingCache || !config->setTimingCache(*timingCache, false)) {
      if (!blob.empty()) {
        output.warnings.push_back("timing cache " + options.timingCachePath +
                                  " was made for another device or TensorRT version: starting with an empty cache");
      }
      timingCache.reset(config->createTimingCache(nullptr, 0));
      if (!timingCache || !config->setTimingCache(*timingCache, false)) {
        throw NativeError(Failure("IBuilderConfig::setTimingCache", logger.LastError()), "ERR_TENSORRT");
      }
    }
  }

  ProgressMonitor progress(monitor);
  config->setProgressMonitor(&progress);
  std::unique_ptr<nvinfer1::IHostMemory> serialized(builder->buildSerializedNetwork(*network, *config));
  config->setProgressMonitor(nullptr);
  if (monitor.Cancelled()) throw NativeError("the engine build was cancelled", "ERR_CANCELLED");
  if (!serialized || serialized->size() == 0) {
    throw NativeError(Failure("IBuilder::buildSerializedNetwork", logger.LastError()), "ERR_TENSORRT");
  }
  const auto* bytes = static_cast<const char*>(serialized->data());
  output.engine.assign(bytes, bytes + serialized->size());

  if (timingCache) {
    const nvinfer1::ITimingCache* updated = config->getTimingCache();
    std::unique_ptr<nvinfer1::IHostMemory> blob(updated != nullptr ? updated->serialize() : nullptr);
    if (blob && blob->size() > 0) {
      const std::string temporary = options.timingCachePath + ".partial";
      std::ofstream file(temporary, std::ios::binary | std::ios::trunc);
      file.write(static_cast<const char*>(blob->data()), static_cast<std::streamsize>(blob->size()));
      file.close();
      // Renamed into place only when whole; a failed write leaves no partial file behind.
      if (!file || std::rename(temporary.c_str(), options.timingCachePath.c_str()) != 0) std::remove(temporary.c_str());
    }
  }
  output.version = LibraryVersion();
  std::vector<std::string> warnings = logger.TakeWarnings();
  output.warnings.insert(output.warnings.end(), warnings.begin(), warnings.end());
  return output;
}

}  // namespace
}  // namespace trt

namespace rt {
std::unique_ptr<GpuRuntime> MakeTensorRtRuntime() { return std::make_unique<trt::TrtRuntime>(); }
}  // namespace rt
}  // namespace deimv2
