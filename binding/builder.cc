#include "builder.h"

#include <NvInfer.h>
#include <NvOnnxParser.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "cuda_check.h"
#include "logger.h"
#include "options.h"

namespace deimv2 {

namespace {

struct ProgressEvent {
  enum Kind { kStart, kStep, kFinish } kind = kStart;
  std::string phase;
  std::string parent;
  int32_t step = 0;
  int32_t steps = 0;
};

using ProgressWorker = Napi::AsyncProgressQueueWorker<ProgressEvent>;

// Forwards TensorRT's build phases to the JS thread. Called on TensorRT's builder thread.
class ProgressMonitor : public nvinfer1::IProgressMonitor {
 public:
  explicit ProgressMonitor(const ProgressWorker::ExecutionProgress& progress) : progress_(progress) {}

  void phaseStart(char const* phaseName, char const* parentPhase, int32_t nbSteps) noexcept override {
    Send(ProgressEvent::kStart, phaseName, parentPhase, 0, nbSteps);
  }
  bool stepComplete(char const* phaseName, int32_t step) noexcept override {
    Send(ProgressEvent::kStep, phaseName, nullptr, step, 0);
    return true;  // never cancels: cancellation would need a JS-side signal, not offered yet
  }
  void phaseFinish(char const* phaseName) noexcept override { Send(ProgressEvent::kFinish, phaseName, nullptr, 0, 0); }

 private:
  void Send(ProgressEvent::Kind kind, char const* phase, char const* parent, int32_t step, int32_t steps) noexcept {
    try {
      ProgressEvent event;
      event.kind = kind;
      event.phase = phase != nullptr ? phase : "";
      event.parent = parent != nullptr ? parent : "";
      event.step = step;
      event.steps = steps;
      progress_.Send(&event, 1);
    } catch (...) {
      // noexcept callback: a lost progress line must not end the build
    }
  }
  const ProgressWorker::ExecutionProgress& progress_;
};

std::vector<char> ReadOptionalFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return {};
  return std::vector<char>((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
}

// Write to "<path>.tmp-<pid-ish>" then rename, so a crash never leaves a truncated engine under the real name.
void WriteFileAtomically(const std::string& path, const void* data, size_t size) {
  std::string temporary = path + ".partial";
  {
    std::ofstream file(temporary, std::ios::binary | std::ios::trunc);
    if (!file) throw NativeError("cannot write " + temporary, "ERR_OUTPUT_WRITE");
    file.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
    if (!file) throw NativeError("writing " + temporary + " failed (disk full?)", "ERR_OUTPUT_WRITE");
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    std::remove(temporary.c_str());
    throw NativeError("cannot rename " + temporary + " to " + path, "ERR_OUTPUT_WRITE");
  }
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
      text += " (node " + std::to_string(error->node()) + " " + (name != nullptr ? name : "") + ", " +
              (op != nullptr ? op : "") + ")";
    }
  }
  return text;
}

class BuildWorker : public ProgressWorker {
 public:
  BuildWorker(Napi::Env env, BuildOptions options, Napi::Function onProgress)
      : ProgressWorker(env, "deimv2.buildEngine"), options_(std::move(options)), deferred_(Napi::Promise::Deferred::New(env)) {
    if (!onProgress.IsEmpty()) onProgress_ = Napi::Persistent(onProgress);
  }

  Napi::Promise Promise() const { return deferred_.Promise(); }

  void Execute(const ExecutionProgress& progress) override {
    try {
      Build(progress);
    } catch (const NativeError& e) {
      code_ = e.code();
      SetError(e.what());
    } catch (const std::exception& e) {
      code_ = "ERR_NATIVE";
      SetError(e.what());
    }
  }

  void OnProgress(const ProgressEvent* events, size_t count) override {
    if (onProgress_.IsEmpty()) return;
    Napi::Env env = Env();
    static const char* const kKinds[] = {"start", "step", "finish"};
    for (size_t i = 0; i < count; ++i) {
      Napi::Object event = Napi::Object::New(env);
      event.Set("event", kKinds[events[i].kind]);
      event.Set("phase", events[i].phase);
      event.Set("parent", events[i].parent);
      event.Set("step", events[i].step);
      event.Set("steps", events[i].steps);
      try {
        onProgress_.Call({event});
      } catch (const Napi::Error&) {
        // A throwing progress callback must not lose the build; the exception is dropped.
      }
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::Object result = Napi::Object::New(env);
    result.Set("engine", options_.enginePath);
    result.Set("bytes", static_cast<double>(engineBytes_));
    result.Set("buildMs", buildMs_);
    result.Set("tensorrtVersion", tensorrtVersion_);
    Napi::Array warnings = Napi::Array::New(env, warnings_.size());
    for (size_t i = 0; i < warnings_.size(); ++i) warnings.Set(static_cast<uint32_t>(i), warnings_[i]);
    result.Set("warnings", warnings);
    deferred_.Resolve(result);
  }

  void OnError(const Napi::Error& error) override {
    deferred_.Reject(ErrorWithCode(Env(), error.Message(), code_).Value());
  }

 private:
  void Build(const ExecutionProgress& progress);

  BuildOptions options_;
  Napi::Promise::Deferred deferred_;
  Napi::FunctionReference onProgress_;
  const char* code_ = "ERR_NATIVE";
  size_t engineBytes_ = 0;
  double buildMs_ = 0;
  std::string tensorrtVersion_;
  std::vector<std::string> warnings_;
};

void BuildWorker::Build(const ExecutionProgress& progress) {
  auto started = std::chrono::steady_clock::now();
  DEIMV2_CUDA(cudaSetDevice(options_.device));
  TrtLogger logger;  // outlives every TensorRT object below (declared first, destroyed last)

  std::unique_ptr<nvinfer1::IBuilder> builder(nvinfer1::createInferBuilder(logger));
  if (!builder) throw NativeError(TrtFailure("createInferBuilder", logger), "ERR_TENSORRT");

  // TensorRT 11 networks are always strongly typed (the flag is deprecated and ignored). TensorRT 10
  // takes it as a creation flag; without it the builder picks precisions from the BuilderFlags.
  nvinfer1::NetworkDefinitionCreationFlags flags = 0;
#if NV_TENSORRT_MAJOR < 11
  if (options_.stronglyTyped) {
    flags |= 1U << static_cast<uint32_t>(nvinfer1::NetworkDefinitionCreationFlag::kSTRONGLY_TYPED);
  }
#endif
  std::unique_ptr<nvinfer1::INetworkDefinition> network(builder->createNetworkV2(flags));
  if (!network) throw NativeError(TrtFailure("IBuilder::createNetworkV2", logger), "ERR_TENSORRT");

  std::unique_ptr<nvonnxparser::IParser> parser(nvonnxparser::createParser(*network, logger));
  if (!parser) throw NativeError(TrtFailure("nvonnxparser::createParser", logger), "ERR_TENSORRT");
  if (!parser->parseFromFile(options_.onnxPath.c_str(), static_cast<int>(nvinfer1::ILogger::Severity::kWARNING))) {
    throw NativeError("IParser::parseFromFile(" + options_.onnxPath + ") failed: " + ParserErrors(*parser), "ERR_MODEL_INVALID");
  }

  std::unique_ptr<nvinfer1::IBuilderConfig> config(builder->createBuilderConfig());
  if (!config) throw NativeError(TrtFailure("IBuilder::createBuilderConfig", logger), "ERR_TENSORRT");
  if (options_.workspaceBytes > 0) {
    config->setMemoryPoolLimit(nvinfer1::MemoryPoolType::kWORKSPACE, static_cast<size_t>(options_.workspaceBytes));
  }
  if (options_.fp16 && !options_.stronglyTyped) {
#if NV_TENSORRT_MAJOR >= 11
    throw NativeError("TensorRT 11 builds strongly typed networks only: an FP16 engine needs the FP16 graph made by "
                      "`deimv2 prepare --precision fp16`",
                      "ERR_INVALID_ARGUMENT");
#else
    // Weakly typed FP16: deprecated since TensorRT 10.12 in favour of strong typing, still the way to
    // get FP16 kernels out of an FP32 graph on 10.x, which DEIMv2 is validated with.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    config->setFlag(nvinfer1::BuilderFlag::kFP16);
#pragma GCC diagnostic pop
#endif
  }

  // Dynamic batch: every input whose axis 0 is -1 gets min/opt/max; any other dynamic axis is an error
  // (DEIMv2 exports have a fixed square input).
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
    const std::pair<nvinfer1::OptProfileSelector, int32_t> sizes[] = {
        {nvinfer1::OptProfileSelector::kMIN, options_.minBatch},
        {nvinfer1::OptProfileSelector::kOPT, options_.optBatch},
        {nvinfer1::OptProfileSelector::kMAX, options_.maxBatch}};
    for (const auto& [selector, batch] : sizes) {
      dims.d[0] = batch;
      if (!profile->setDimensions(input->getName(), selector, dims)) {
        throw NativeError(TrtFailure("IOptimizationProfile::setDimensions", logger), "ERR_TENSORRT");
      }
    }
  }
  if (dynamicBatch && config->addOptimizationProfile(profile) < 0) {
    throw NativeError(TrtFailure("IBuilderConfig::addOptimizationProfile", logger), "ERR_TENSORRT");
  }
  if (!dynamicBatch && options_.maxBatch > 1) {
    throw NativeError("the graph has a fixed batch size; export it with a dynamic batch axis to build for batch " +
                          std::to_string(options_.maxBatch),
                      "ERR_MODEL_INVALID");
  }

  // Timing cache: reused across builds (kernel timings are the slow part), written back afterwards.
  std::unique_ptr<nvinfer1::ITimingCache> timingCache;
  if (!options_.timingCachePath.empty()) {
    std::vector<char> blob = ReadOptionalFile(options_.timingCachePath);
    timingCache.reset(config->createTimingCache(blob.data(), blob.size()));
    if (!timingCache) {
      // A cache from another TensorRT version or GPU: start a fresh one instead of failing the build.
      timingCache.reset(config->createTimingCache(nullptr, 0));
    }
    if (!timingCache || !config->setTimingCache(*timingCache, false)) {
      throw NativeError(TrtFailure("IBuilderConfig::setTimingCache", logger), "ERR_TENSORRT");
    }
  }

  ProgressMonitor monitor(progress);
  config->setProgressMonitor(&monitor);
  std::unique_ptr<nvinfer1::IHostMemory> serialized(builder->buildSerializedNetwork(*network, *config));
  config->setProgressMonitor(nullptr);
  if (!serialized || serialized->size() == 0) {
    throw NativeError(TrtFailure("IBuilder::buildSerializedNetwork", logger), "ERR_TENSORRT");
  }
  WriteFileAtomically(options_.enginePath, serialized->data(), serialized->size());
  engineBytes_ = serialized->size();

  if (timingCache) {
    const nvinfer1::ITimingCache* updated = config->getTimingCache();
    std::unique_ptr<nvinfer1::IHostMemory> blob(updated != nullptr ? updated->serialize() : nullptr);
    if (blob && blob->size() > 0) WriteFileAtomically(options_.timingCachePath, blob->data(), blob->size());
  }

  // getInferLibVersion() is the library actually loaded: major * 10000 + minor * 100 + patch.
  int32_t version = getInferLibVersion();
  tensorrtVersion_ = std::to_string(version / 10000) + "." + std::to_string((version / 100) % 100) + "." +
                     std::to_string(version % 100);
  warnings_ = logger.TakeWarnings();
  buildMs_ = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
}

}  // namespace

Napi::Value BuildEngine(const Napi::CallbackInfo& info) {
  BuildOptions options = ParseBuildOptions(info[0]);
  Napi::Function onProgress = ExpectFunction(info[1], "onProgress", true);
  auto* worker = new BuildWorker(info.Env(), std::move(options), onProgress);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace deimv2
