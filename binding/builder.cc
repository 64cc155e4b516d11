#include "builder.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "guard.h"
#include "options.h"
#include "runtime/gpu_runtime.h"

namespace deimv2 {

namespace {

struct ProgressEvent {
  int kind = 0;  // 0 start, 1 step, 2 finish
  std::string phase;
  std::string parent;
  int32_t step = 0;
  int32_t steps = 0;
};

using ProgressWorker = Napi::AsyncProgressQueueWorker<ProgressEvent>;

// Forwards the runtime's build phases to the JS thread (called on the builder's thread).
class Monitor : public rt::BuildMonitor {
 public:
  Monitor(const ProgressWorker::ExecutionProgress& progress, const std::atomic<bool>& cancelled)
      : progress_(progress), cancelled_(cancelled) {}
  void Phase(int kind, const char* phase, const char* parent, int32_t step, int32_t steps) noexcept override {
    try {
      ProgressEvent event;
      event.kind = kind;
      event.phase = phase != nullptr ? phase : "";
      event.parent = parent != nullptr ? parent : "";
      event.step = step;
      event.steps = steps;
      progress_.Send(&event, 1);
    } catch (...) {
      // a lost progress line must not end the build
    }
  }
  bool Cancelled() const noexcept override { return cancelled_.load(); }

 private:
  const ProgressWorker::ExecutionProgress& progress_;
  const std::atomic<bool>& cancelled_;
};

// Write to "<path>.partial" then rename, so a crash never leaves a truncated engine under the real name.
void WriteFileAtomically(const std::string& path, const void* data, size_t size) {
  std::string temporary = path + ".partial";
  {
    std::ofstream file(temporary, std::ios::binary | std::ios::trunc);
    if (!file) throw NativeError("cannot write " + temporary, "ERR_OUTPUT_WRITE");
    file.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
    // close() flushes what is still buffered: a full disk can fail only here.
    file.close();
    if (!file) {
      std::remove(temporary.c_str());
      throw NativeError("writing " + temporary + " failed (disk full?)", "ERR_OUTPUT_WRITE");
    }
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    std::remove(temporary.c_str());
    throw NativeError("cannot rename " + temporary + " to " + path, "ERR_OUTPUT_WRITE");
  }
}

class BuildWorker : public ProgressWorker {
 public:
  BuildWorker(Napi::Env env, rt::GpuRuntime& runtime, BuildOptions options, Napi::Function onProgress)
      : ProgressWorker(env, "deimv2.buildEngine"),
        runtime_(runtime),
        options_(std::move(options)),
        deferred_(Napi::Promise::Deferred::New(env)) {
    if (!onProgress.IsEmpty()) onProgress_ = Napi::Persistent(onProgress);
  }

  Napi::Promise Promise() const { return deferred_.Promise(); }

  void Execute(const ExecutionProgress& progress) override {
    std::string message;
    if (!GuardCall([&] { Build(progress); }, &message, &code_)) SetError(message);
  }

  void OnProgress(const ProgressEvent* events, size_t count) override {
    if (onProgress_.IsEmpty()) return;
    Napi::Env env = Env();
    static const char* const kKinds[] = {"start", "step", "finish"};
    for (size_t i = 0; i < count; ++i) {
      Napi::Object event = Napi::Object::New(env);
      event.Set("event", kKinds[events[i].kind < 0 || events[i].kind > 2 ? 0 : events[i].kind]);
      event.Set("phase", events[i].phase);
      event.Set("parent", events[i].parent);
      event.Set("step", events[i].step);
      event.Set("steps", events[i].steps);
      try {
        Napi::Value answer = onProgress_.Call({event});
        if (answer.IsBoolean() && !answer.As<Napi::Boolean>().Value()) cancelled_.store(true);
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
    result.Set("tensorrtVersion", version_);
    result.Set("runtime", runtime_.Name());
    Napi::Array warnings = Napi::Array::New(env, warnings_.size());
    for (size_t i = 0; i < warnings_.size(); ++i) warnings.Set(static_cast<uint32_t>(i), warnings_[i]);
    result.Set("warnings", warnings);
    deferred_.Resolve(result);
  }

  void OnError(const Napi::Error& error) override {
    deferred_.Reject(ErrorWithCode(Env(), error.Message(), code_).Value());
  }

 private:
  void Build(const ExecutionProgress& progress) {
    auto started = std::chrono::steady_clock::now();
    runtime_.SetDevice(options_.device);
    Monitor monitor(progress, cancelled_);
    rt::BuildOutput output = runtime_.Build(options_, monitor);
    if (cancelled_.load()) throw NativeError("the engine build was cancelled", "ERR_CANCELLED");
    if (output.engine.empty()) throw NativeError("the builder produced an empty engine", "ERR_TENSORRT");
    WriteFileAtomically(options_.enginePath, output.engine.data(), output.engine.size());
    engineBytes_ = output.engine.size();
    version_ = output.version;
    warnings_ = std::move(output.warnings);
    buildMs_ = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  }

  rt::GpuRuntime& runtime_;
  BuildOptions options_;
  Napi::Promise::Deferred deferred_;
  Napi::FunctionReference onProgress_;
  std::atomic<bool> cancelled_{false};
  const char* code_ = "ERR_NATIVE";
  size_t engineBytes_ = 0;
  double buildMs_ = 0;
  std::string version_;
  std::vector<std::string> warnings_;
};

}  // namespace

Napi::Value BuildEngine(const Napi::CallbackInfo& info) {
  BuildOptions options = ParseBuildOptions(info[0]);
  Napi::Function onProgress = ExpectFunction(info[1], "onProgress", true);
  rt::GpuRuntime& runtime = rt::Active();
  runtime.Version();  // throws ERR_TENSORRT_UNAVAILABLE (with the reason) where there is no runtime
  auto* worker = new BuildWorker(info.Env(), runtime, std::move(options), onProgress);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace deimv2
