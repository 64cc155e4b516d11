#include "engine.h"

#include <fstream>
#include <iterator>

#include "guard.h"

namespace deimv2 {

namespace {

// The engine class's constructor, kept per addon instance (worker threads load the addon again).
struct AddonData {
  Napi::FunctionReference engineClass;
};

std::vector<char> ReadFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw NativeError("cannot open engine file " + path, "ERR_ENGINE_NOT_FOUND");
  std::vector<char> bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  if (bytes.empty()) throw NativeError("engine file " + path + " is empty", "ERR_ENGINE_INVALID");
  return bytes;
}

// An AsyncWorker whose promise rejects with the failure's message and code. Execute() runs Work()
// through GuardCall, so nothing thrown on the worker thread can reach libuv.
class CodedWorker : public Napi::AsyncWorker {
 protected:
  CodedWorker(Napi::Env env, const char* name) : Napi::AsyncWorker(env, name), deferred_(Napi::Promise::Deferred::New(env)) {}

  virtual void Work() = 0;
  void Execute() override {
    std::string message;
    if (!GuardCall([this] { Work(); }, &message, &code_)) SetError(message);
  }
  void OnError(const Napi::Error& error) override { Reject(error.Message()); }
  void Reject(const std::string& message) { deferred_.Reject(ErrorWithCode(Env(), message, code_).Value()); }

 public:
  Napi::Promise Promise() const { return deferred_.Promise(); }

 protected:
  Napi::Promise::Deferred deferred_;
  const char* code_ = "ERR_NATIVE";
};

class OpenWorker : public CodedWorker {
 public:
  OpenWorker(Napi::Env env, rt::GpuRuntime& runtime, OpenOptions options)
      : CodedWorker(env, "deimv2.openEngine"), runtime_(runtime), options_(std::move(options)) {}
  ~OpenWorker() override {
    if (loaded_) ReleaseEngine(std::move(loaded_));  // never wrapped: free it off the JS thread
  }
  void Work() override { loaded_ = LoadEngine(runtime_, options_); }
  void OnOK() override {
    Napi::Env env = Env();
    try {
      deferred_.Resolve(Engine::Wrap(env, std::move(loaded_)));
    } catch (const Napi::Error& e) {
      code_ = "ERR_NATIVE";
      Reject(e.Message());
    } catch (const NativeError& e) {
      code_ = e.code();
      Reject(e.what());
    } catch (...) {
      code_ = "ERR_NATIVE";
      Reject("wrapping the opened engine failed");
    }
  }

 private:
  rt::GpuRuntime& runtime_;
  OpenOptions options_;
  std::shared_ptr<LoadedEngine> loaded_;
};

// Frees contexts, device memory, pinned memory and the engine off the JS thread, on its device.
class CloseWorker : public CodedWorker {
 public:
  CloseWorker(Napi::Env env, std::shared_ptr<LoadedEngine> loaded, std::vector<Napi::Promise::Deferred> waiters)
      : CodedWorker(env, "deimv2.close"), loaded_(std::move(loaded)), waiters_(std::move(waiters)) {}
  void Work() override {
    // Every ArrayBuffer over the pinned memory was detached on the JS thread: free it now, so close()
    // resolves after ALL the memory is returned, not when V8 gets round to collecting the views.
    for (auto& slot : loaded_->slots) {
      for (size_t i = 0; i < loaded_->io.size(); ++i) slot->HostBuffer(i)->FreeNow();
      if (slot->FrameBuffer()) slot->FrameBuffer()->FreeNow();
    }
    loaded_->runtime.SetDevice(loaded_->device);
    loaded_.reset();
  }
  void OnOK() override {
    for (auto& waiter : waiters_) waiter.Resolve(Env().Undefined());
    deferred_.Resolve(Env().Undefined());
  }
  void OnError(const Napi::Error& error) override {
    for (auto& waiter : waiters_) waiter.Reject(ErrorWithCode(Env(), error.Message(), code_).Value());
    CodedWorker::OnError(error);
  }

 private:
  std::shared_ptr<LoadedEngine> loaded_;
  std::vector<Napi::Promise::Deferred> waiters_;
};

}  // namespace

// A slot job's outcome, from its runner thread to the JS thread.
struct Completion {
  size_t slot = 0;
  bool ok = false;
  std::string message;
  const char* code = "ERR_NATIVE";
};

void ReleaseEngine(std::shared_ptr<LoadedEngine> loaded) noexcept {
  if (!loaded) return;
  std::shared_ptr<LoadedEngine>* held = nullptr;
  try {
    held = new std::shared_ptr<LoadedEngine>(std::move(loaded));
    rt::DeferRelease([held] {
      std::string message;
      const char* code = nullptr;
      GuardCall([held] { (*held)->runtime.SetDevice((*held)->device); }, &message, &code);
      delete held;
    });
  } catch (...) {
    // No memory even for the hand-over: free here rather than leak or terminate.
    delete held;
  }
}

std::shared_ptr<LoadedEngine> LoadEngine(rt::GpuRuntime& runtime, OpenOptions options) {
  auto loaded = std::make_shared<LoadedEngine>(runtime);
  loaded->device = options.device;
  loaded->path = options.enginePath;
  runtime.SetDevice(options.device);
  std::vector<char> bytes = ReadFile(options.enginePath);
  loaded->engine = runtime.Deserialize(bytes, options.enginePath);
  loaded->io = DescribeIo(*loaded->engine);

  // The batch range comes from profile 0 of the first batched input; fixed-batch engines have one size.
  loaded->minBatch = loaded->optBatch = loaded->maxBatch = 1;
  for (const IoTensor& tensor : loaded->io) {
    if (!tensor.isInput) continue;
    if (!tensor.batched) {
      if (tensor.shape.rank > 0) loaded->minBatch = loaded->optBatch = loaded->maxBatch = static_cast<int32_t>(tensor.shape.d[0]);
      continue;
    }
    rt::Shape min, opt, max;
    loaded->engine->ProfileShapes(tensor.name, &min, &opt, &max);
    loaded->minBatch = static_cast<int32_t>(min.d[0]);
    loaded->optBatch = static_cast<int32_t>(opt.d[0]);
    loaded->maxBatch = static_cast<int32_t>(max.d[0]);
    break;
  }
  if (loaded->minBatch < 1 || loaded->maxBatch < loaded->minBatch || loaded->maxBatch > kMaxBatchLimit) {
    throw NativeError("engine " + options.enginePath + " has an unusable batch profile " + std::to_string(loaded->minBatch) +
                          ".." + std::to_string(loaded->maxBatch),
                      "ERR_ENGINE_UNSUPPORTED");
  }
  // GPU preprocessing only where the kernel can run on this device (an image for its architecture, or
  // PTX it can JIT); otherwise the slots get no frame staging and JS preprocesses on the CPU.
  if (options.frameBytes > 0) {
    std::string why;
    if (FindImageInput(loaded->io) < 0) {
      options.frameBytes = 0;
    } else if (!runtime.KernelRuns(options.device, &why)) {
      loaded->kernelFallback = why;
      options.frameBytes = 0;
    }
  }
  loaded->gpuPreprocessing = options.frameBytes > 0;
  for (int32_t i = 0; i < options.contexts; ++i) {
    loaded->slots.push_back(
        std::make_unique<ContextSlot>(runtime, *loaded->engine, loaded->io, options.device, loaded->maxBatch, options));
  }
  for (int32_t i = 0; i < options.contexts; ++i) loaded->runners.push_back(std::make_unique<SlotRunner>());
  return loaded;
}

Napi::Function Engine::Define(Napi::Env env) {
  Napi::Function engineClass = DefineClass(env, "TensorRtEngine",
      {
          InstanceAccessor<&Engine::Tensors>("tensors"),
          InstanceAccessor<&Engine::Profile>("profile"),
          InstanceAccessor<&Engine::SlotCount>("slots"),
          InstanceAccessor<&Engine::Closed>("closed"),
          InstanceMethod<&Engine::Buffers>("buffers"),
          InstanceAccessor<&Engine::CudaGraphs>("cudaGraphs"),
          InstanceAccessor<&Engine::GpuPreprocessing>("gpuPreprocessing"),
          InstanceMethod<&Engine::Frames>("frames"),
          InstanceMethod<&Engine::Infer>("infer"),
          InstanceMethod<&Engine::InferFrames>("inferFrames"),
          InstanceMethod<&Engine::ReadInput>("readInput"),
          InstanceMethod<&Engine::IsBusy>("isBusy"),
          InstanceMethod<&Engine::Close>("close"),
      });
  auto* data = new AddonData();
  data->engineClass = Napi::Persistent(engineClass);
  env.SetInstanceData<AddonData>(data);
  return engineClass;
}

Napi::Object Engine::Wrap(Napi::Env env, std::shared_ptr<LoadedEngine> loaded) {
  Napi::Object object = env.GetInstanceData<AddonData>()->engineClass.New({});
  Engine::Unwrap(object)->Attach(std::move(loaded));
  return object;
}

Engine::Engine(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Engine>(info) {
  // Constructed empty by Wrap(); `new TensorRtEngine()` from JS gives a closed engine.
  closing_ = true;
}

Engine::~Engine() {
  // Collected without close() (no infer can be in flight: each holds a reference to this object).
  // The frees go to the teardown thread, on the engine's device, never the JS thread.
  ReleaseNotifier();
  if (loaded_) ReleaseEngine(std::move(loaded_));
}

bool Engine::NotifierUsable() const { return notifierLive_ && notifierAlive_ && *notifierAlive_; }

void Engine::ReleaseNotifier() {
  const bool usable = NotifierUsable();
  notifierLive_ = false;
  if (usable) notifier_.Release();
}

void Engine::Attach(std::shared_ptr<LoadedEngine> loaded) {
  Napi::Env env = Env();
  loaded_ = std::move(loaded);
  try {
    for (const auto& slot : loaded_->slots) {
      Napi::Object buffers = Napi::Object::New(env);
      for (size_t i = 0; i < loaded_->io.size(); ++i) {
        buffers.Set(loaded_->io[i].name, PinnedBuffer::ToArrayBuffer(env, slot->HostBuffer(i)));
      }
      buffers.Freeze();
      slotBuffers_.push_back(Napi::Persistent(buffers));
      frameBuffers_.push_back(slot->FrameBuffer() ? Napi::Persistent(PinnedBuffer::ToArrayBuffer(env, slot->FrameBuffer()))
                                                  : Napi::Reference<Napi::ArrayBuffer>());
    }
  } catch (...) {
    // An ArrayBuffer was refused: the engine is unusable; free it and report.
    DetachBuffers();
    ReleaseEngine(std::move(loaded_));
    throw;
  }
  slotPromises_.resize(loaded_->slots.size());
  // Unref'd while idle: an open engine alone does not keep the process alive.
  // The finalizer clears the shared flag, so an engine collected after environment teardown (which
  // finalizes thread-safe functions itself) never touches a freed one.
  notifierAlive_ = std::make_shared<bool>(true);
  auto* alive = new std::shared_ptr<bool>(notifierAlive_);
  notifier_ = Notifier::New(env, "deimv2.infer", 0, 1, this,
                            [](Napi::Env, std::shared_ptr<bool>* flag, Engine*) {
                              **flag = false;
                              delete flag;
                            },
                            alive);
  notifier_.Unref(env);
  notifierLive_ = true;
  closing_ = false;
}

void Engine::DetachBuffers() {
  for (auto& buffers : slotBuffers_) {
    Napi::Object object = buffers.Value();
    for (const IoTensor& io : loaded_->io) {
      Napi::Value value = object.Get(io.name);
      if (value.IsArrayBuffer()) value.As<Napi::ArrayBuffer>().Detach();
    }
  }
  slotBuffers_.clear();
  for (auto& frames : frameBuffers_) {
    if (!frames.IsEmpty()) frames.Value().Detach();
  }
  frameBuffers_.clear();
}

void Engine::CheckOpen(Napi::Env env) const {
  if (closing_ || !loaded_) throw ErrorWithCode(env, "the TensorRT engine is closed", "ERR_CLOSED");
}

size_t Engine::CheckSlot(const Napi::Value& value) const {
  return static_cast<size_t>(ExpectInt(value, "slot", 0, static_cast<int32_t>(loaded_->slots.size()) - 1));
}

Napi::Value Engine::Tensors(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  Napi::Array tensors = Napi::Array::New(env, loaded_->io.size());
  for (size_t i = 0; i < loaded_->io.size(); ++i) {
    const IoTensor& io = loaded_->io[i];
    Napi::Object tensor = Napi::Object::New(env);
    tensor.Set("name", io.name);
    tensor.Set("input", io.isInput);
    tensor.Set("dtype", io.typeName);
    Napi::Array shape = Napi::Array::New(env, static_cast<size_t>(io.shape.rank));
    for (int32_t axis = 0; axis < io.shape.rank; ++axis) {
      shape.Set(static_cast<uint32_t>(axis), Napi::Number::New(env, static_cast<double>(io.shape.d[axis])));
    }
    tensor.Set("shape", shape);
    tensors.Set(static_cast<uint32_t>(i), tensor);
  }
  return tensors;
}

Napi::Value Engine::Profile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  Napi::Object profile = Napi::Object::New(env);
  profile.Set("min", loaded_->minBatch);
  profile.Set("opt", loaded_->optBatch);
  profile.Set("max", loaded_->maxBatch);
  return profile;
}

Napi::Value Engine::SlotCount(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), loaded_ ? static_cast<double>(loaded_->slots.size()) : 0);
}

Napi::Value Engine::Closed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), closing_); }

Napi::Value Engine::Buffers(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  return slotBuffers_[CheckSlot(info[0])].Value();
}

Napi::Value Engine::IsBusy(const Napi::CallbackInfo& info) {
  CheckOpen(info.Env());
  return Napi::Boolean::New(info.Env(), loaded_->slots[CheckSlot(info[0])]->busy.load());
}

// frames(slot) -> ArrayBuffer: the slot's pinned uint8 staging that inferFrames() uploads from.
Napi::Value Engine::Frames(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  size_t slot = CheckSlot(info[0]);
  if (frameBuffers_[slot].IsEmpty()) {
    std::string why = loaded_->kernelFallback.empty()
                          ? "this engine has no frame staging: open it with frameBytes > 0 (and an engine whose input is "
                            "float32 [N,3,S,S])"
                          : "GPU preprocessing is off for this engine: " + loaded_->kernelFallback;
    throw ErrorWithCode(env, why, "ERR_UNSUPPORTED");
  }
  return frameBuffers_[slot].Value();
}

// gpuPreprocessing -> { enabled, reason }
Napi::Value Engine::GpuPreprocessing(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  Napi::Object out = Napi::Object::New(env);
  out.Set("enabled", loaded_->gpuPreprocessing);
  out.Set("reason", loaded_->kernelFallback);
  return out;
}

// cudaGraphs -> [{ enabled, batch, failure }] per slot
Napi::Value Engine::CudaGraphs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  Napi::Array out = Napi::Array::New(env, loaded_->slots.size());
  for (size_t i = 0; i < loaded_->slots.size(); ++i) {
    GraphStatus status = loaded_->slots[i]->Graph();
    Napi::Object entry = Napi::Object::New(env);
    entry.Set("enabled", status.enabled);
    entry.Set("batch", status.batch);
    entry.Set("failure", status.failure);
    out.Set(static_cast<uint32_t>(i), entry);
  }
  return out;
}

// infer(slot, batch) -> Promise<void>
Napi::Value Engine::Infer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  size_t slot = CheckSlot(info[0]);
  int32_t batch = ExpectInt(info[1], "batch", loaded_->minBatch, loaded_->maxBatch);
  return QueueInfer(env, slot, batch, nullptr);
}

// inferFrames(slot, batch, plan, tables, lut) -> Promise<void>; the frames are in frames(slot).
Napi::Value Engine::InferFrames(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  size_t slot = CheckSlot(info[0]);
  int32_t batch = ExpectInt(info[1], "batch", loaded_->minBatch, loaded_->maxBatch);
  const auto& staging = loaded_->slots[slot]->FrameBuffer();
  int32_t imageInput = FindImageInput(loaded_->io);
  if (!staging || imageInput < 0) Frames(info);  // throws ERR_UNSUPPORTED with the reason
  int32_t side = static_cast<int32_t>(loaded_->io[static_cast<size_t>(imageInput)].shape.d[2]);
  auto frames = std::make_unique<FramePlan>(ParseFramePlan(info[2], info[3], info[4], batch, staging->size(), side));
  return QueueInfer(env, slot, batch, std::move(frames));
}

// readInput(slot, batch) -> Promise<void>: the device image input back into buffers(slot).images.
Napi::Value Engine::ReadInput(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckOpen(env);
  size_t slot = CheckSlot(info[0]);
  int32_t batch = ExpectInt(info[1], "batch", 1, loaded_->maxBatch);
  return QueueInfer(env, slot, batch, nullptr, true);
}

Napi::Value Engine::QueueInfer(Napi::Env env, size_t slot, int32_t batch, std::unique_ptr<FramePlan> frames,
                               bool readInput) {
  bool expected = false;
  if (!loaded_->slots[slot]->busy.compare_exchange_strong(expected, true)) {
    throw ErrorWithCode(env, "slot " + std::to_string(slot) + " is in flight: await its infer() before reusing its buffers",
                        "ERR_SLOT_BUSY");
  }
  try {
    slotPromises_[slot] = std::make_unique<Napi::Promise::Deferred>(Napi::Promise::Deferred::New(env));
    Napi::Promise promise = slotPromises_[slot]->Promise();
    // The job holds the engine's state by plain pointer: close() waits until every job has been
    // delivered back here, so the state outlives them (and no job can drop its last reference).
    LoadedEngine* loaded = loaded_.get();
    std::shared_ptr<FramePlan> plan(std::move(frames));
    Notifier notifier = notifier_;
    loaded_->runners[slot]->Post([loaded, slot, batch, plan, readInput, notifier]() mutable {
      auto* done = new Completion();
      done->slot = slot;
      done->ok = GuardCall(
          [&] {
            ContextSlot& context = *loaded->slots[slot];
            if (readInput) {
              context.IssueReadInput(batch);
            } else {
              context.Issue(batch, plan.get());
            }
            context.Wait();
          },
          &done->message, &done->code);
      plan.reset();
      if (notifier.NonBlockingCall(done) != napi_ok) delete done;  // the environment is going away
    });
    // Counted only once queued: a job that never runs must leave neither a busy slot nor a close()
    // waiting for it.
    if (inFlight_++ == 0 && NotifierUsable()) notifier_.Ref(env);
    Ref();  // the JS object stays alive while its work is in flight (released in Settle)
    return promise;
  } catch (...) {
    slotPromises_[slot].reset();
    loaded_->slots[slot]->busy.store(false);
    throw;
  }
}

void Engine::Deliver(Napi::Env env, Napi::Function, Engine* engine, Completion* done) {
  std::unique_ptr<Completion> completion(done);
  if (env == nullptr || engine == nullptr || completion == nullptr) return;  // environment teardown
  std::unique_ptr<Napi::Promise::Deferred> deferred = std::move(engine->slotPromises_[completion->slot]);
  engine->Settle(env, completion->slot);
  if (!deferred) return;
  if (completion->ok) {
    deferred->Resolve(env.Undefined());
  } else {
    deferred->Reject(ErrorWithCode(env, completion->message, completion->code).Value());
  }
}

void Engine::Settle(Napi::Env env, size_t slot) {
  if (loaded_) loaded_->slots[slot]->busy.store(false);
  if (--inFlight_ == 0 && NotifierUsable()) notifier_.Unref(env);
  if (closing_ && inFlight_ == 0 && loaded_) StartClose(env);
  Unref();
}

// close() -> Promise<void>; idempotent: every call returns the first call's promise, which settles
// once the GPU objects are freed (so a second close() cannot resolve while the first is freeing).
// Buffers are detached when the freeing starts, which is once the infers in flight have settled.
Napi::Value Engine::Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!closePromise_.IsEmpty()) return closePromise_.Value();
  auto waiter = Napi::Promise::Deferred::New(env);
  closePromise_ = Napi::Persistent(waiter.Promise().As<Napi::Object>());
  if (!loaded_) {
    closing_ = true;
    waiter.Resolve(env.Undefined());
    return waiter.Promise();
  }
  closeWaiters_.push_back(waiter);
  closing_ = true;
  if (inFlight_ == 0) StartClose(env);
  return waiter.Promise();
}

void Engine::StartClose(Napi::Env env) {
  DetachBuffers();
  ReleaseNotifier();  // no job is in flight: nothing will call it again
  auto* worker = new CloseWorker(env, std::move(loaded_), std::move(closeWaiters_));
  closeWaiters_.clear();
  worker->Queue();
}

// openEngine(options) -> Promise<TensorRtEngine>
Napi::Value OpenEngine(const Napi::CallbackInfo& info) {
  OpenOptions options = ParseOpenOptions(info[0]);
  rt::GpuRuntime& runtime = rt::Active();
  runtime.Version();  // throws ERR_TENSORRT_UNAVAILABLE (with the reason) where there is no runtime
  auto* worker = new OpenWorker(info.Env(), runtime, std::move(options));
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace deimv2
