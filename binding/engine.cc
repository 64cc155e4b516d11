#include "engine.h"

#include <NvInferRuntime.h>

#include <fstream>
#include <functional>
#include <iterator>

#include "cuda_check.h"

#ifndef DEIMV2_WITH_CUDA_KERNELS
#define DEIMV2_WITH_CUDA_KERNELS 1
#endif

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

// Rejects a deferred with the worker's message and code.
class CodedWorker : public Napi::AsyncWorker {
 protected:
  CodedWorker(Napi::Env env, const char* name) : Napi::AsyncWorker(env, name), deferred_(Napi::Promise::Deferred::New(env)) {}

  void Guard(const std::function<void()>& work) {
    try {
      work();
    } catch (const NativeError& e) {
      code_ = e.code();
      SetError(e.what());
    } catch (const std::exception& e) {
      code_ = "ERR_NATIVE";
      SetError(e.what());
    }
  }
  void OnError(const Napi::Error& error) override {
    deferred_.Reject(ErrorWithCode(Env(), error.Message(), code_).Value());
  }

 public:
  Napi::Promise Promise() const { return deferred_.Promise(); }

 protected:
  Napi::Promise::Deferred deferred_;
  const char* code_ = "ERR_NATIVE";
};

class OpenWorker : public CodedWorker {
 public:
  OpenWorker(Napi::Env env, OpenOptions options) : CodedWorker(env, "deimv2.openEngine"), options_(std::move(options)) {}
  void Execute() override {
    Guard([this] { loaded_ = LoadEngine(options_); });
  }
  void OnOK() override { deferred_.Resolve(Engine::Wrap(Env(), std::move(loaded_))); }

 private:
  OpenOptions options_;
  std::shared_ptr<LoadedEngine> loaded_;
};

class InferWorker : public CodedWorker {
 public:
  InferWorker(Napi::Env env, Engine* owner, std::shared_ptr<LoadedEngine> loaded, size_t slot, int32_t batch,
              std::unique_ptr<FramePlan> frames, bool readInput)
      : CodedWorker(env, "deimv2.infer"),
        owner_(owner),
        loaded_(std::move(loaded)),
        slot_(slot),
        batch_(batch),
        frames_(std::move(frames)),
        readInput_(readInput) {
    // The JS object stays alive while its work is in flight (node-llama-cpp's habit).
    owner_->Ref();
  }
  void Execute() override {
    Guard([this] {
      if (readInput_) {
        loaded_->slots[slot_]->DownloadImageInput(batch_);
      } else {
        loaded_->slots[slot_]->Run(batch_, frames_.get());
      }
    });
  }
  void OnOK() override {
    Finish();
    deferred_.Resolve(Env().Undefined());
  }
  void OnError(const Napi::Error& error) override {
    Finish();
    CodedWorker::OnError(error);
  }

 private:
  void Finish() {
    owner_->Settle(slot_);
    owner_->Unref();
  }
  Engine* owner_;
  std::shared_ptr<LoadedEngine> loaded_;
  size_t slot_;
  int32_t batch_;
  std::unique_ptr<FramePlan> frames_;  // a validated copy, owned by the worker until it settles
  bool readInput_;
};

// Frees contexts, device memory, the engine and the runtime off the JS thread (cudaFree synchronizes).
class CloseWorker : public CodedWorker {
 public:
  CloseWorker(Napi::Env env, std::shared_ptr<LoadedEngine> loaded, std::vector<Napi::Promise::Deferred> waiters)
      : CodedWorker(env, "deimv2.close"), loaded_(std::move(loaded)), waiters_(std::move(waiters)) {}
  void Execute() override {
    Guard([this] {
      DEIMV2_CUDA(cudaSetDevice(loaded_->device));
      loaded_.reset();
    });
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

std::shared_ptr<LoadedEngine> LoadEngine(const OpenOptions& options) {
  auto loaded = std::make_shared<LoadedEngine>();
  loaded->device = options.device;
  loaded->path = options.enginePath;
  DEIMV2_CUDA(cudaSetDevice(options.device));
  std::vector<char> bytes = ReadFile(options.enginePath);

  loaded->runtime.reset(nvinfer1::createInferRuntime(loaded->logger));
  if (!loaded->runtime) throw NativeError(TrtFailure("createInferRuntime", loaded->logger), "ERR_TENSORRT");
  loaded->engine.reset(loaded->runtime->deserializeCudaEngine(bytes.data(), bytes.size()));
  if (!loaded->engine) {
    // Corrupt or truncated files and engines from another TensorRT version or GPU all end here; the
    // TypeScript cache rebuilds on this code.
    throw NativeError(TrtFailure(("IRuntime::deserializeCudaEngine(" + options.enginePath + ")").c_str(), loaded->logger),
                      "ERR_ENGINE_INVALID");
  }
  loaded->io = DescribeIo(*loaded->engine);

  // The batch range comes from profile 0 of the first batched input; fixed-batch engines have one size.
  loaded->minBatch = loaded->optBatch = loaded->maxBatch = 1;
  for (const IoTensor& tensor : loaded->io) {
    if (!tensor.isInput) continue;
    if (!tensor.batched) {
      if (tensor.shape.nbDims > 0) loaded->minBatch = loaded->optBatch = loaded->maxBatch = static_cast<int32_t>(tensor.shape.d[0]);
      continue;
    }
    const char* name = tensor.name.c_str();
    loaded->minBatch = static_cast<int32_t>(loaded->engine->getProfileShape(name, 0, nvinfer1::OptProfileSelector::kMIN).d[0]);
    loaded->optBatch = static_cast<int32_t>(loaded->engine->getProfileShape(name, 0, nvinfer1::OptProfileSelector::kOPT).d[0]);
    loaded->maxBatch = static_cast<int32_t>(loaded->engine->getProfileShape(name, 0, nvinfer1::OptProfileSelector::kMAX).d[0]);
    break;
  }
  if (loaded->minBatch < 1 || loaded->maxBatch < loaded->minBatch || loaded->maxBatch > kMaxBatchLimit) {
    throw NativeError("engine " + options.enginePath + " has an unusable batch profile " + std::to_string(loaded->minBatch) +
                          ".." + std::to_string(loaded->maxBatch),
                      "ERR_ENGINE_UNSUPPORTED");
  }
  for (int32_t i = 0; i < options.contexts; ++i) {
    loaded->slots.push_back(
        std::make_unique<ContextSlot>(*loaded->engine, loaded->io, options.device, loaded->maxBatch, options, loaded->logger));
  }
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

void Engine::Attach(std::shared_ptr<LoadedEngine> loaded) {
  Napi::Env env = Env();
  loaded_ = std::move(loaded);
  closing_ = false;
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
    Napi::Array shape = Napi::Array::New(env, static_cast<size_t>(io.shape.nbDims));
    for (int32_t axis = 0; axis < io.shape.nbDims; ++axis) {
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
    throw ErrorWithCode(env,
                        "this engine has no frame staging: open it with frameBytes > 0 (and an engine whose input is "
                        "float32 [N,3,S,S])",
                        "ERR_UNSUPPORTED");
  }
  return frameBuffers_[slot].Value();
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
  auto* worker = new InferWorker(env, this, loaded_, slot, batch, std::move(frames), readInput);
  ++inFlight_;
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

void Engine::Settle(size_t slot) {
  loaded_->slots[slot]->busy.store(false);
  --inFlight_;
  if (closing_ && inFlight_ == 0 && loaded_) StartClose(Env());
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
  for (auto& buffers : slotBuffers_) {
    Napi::Object object = buffers.Value();
    for (const IoTensor& io : loaded_->io) object.Get(io.name).As<Napi::ArrayBuffer>().Detach();
  }
  slotBuffers_.clear();
  for (auto& frames : frameBuffers_) {
    if (!frames.IsEmpty()) frames.Value().Detach();
  }
  frameBuffers_.clear();
  auto* worker = new CloseWorker(env, std::move(loaded_), std::move(closeWaiters_));
  closeWaiters_.clear();
  worker->Queue();
}

// openEngine(options) -> Promise<TensorRtEngine>
Napi::Value OpenEngine(const Napi::CallbackInfo& info) {
  OpenOptions options = ParseOpenOptions(info[0]);
#if !DEIMV2_WITH_CUDA_KERNELS
  if (options.frameBytes > 0) {
    throw ErrorWithCode(info.Env(),
                        "frameBytes needs the CUDA preprocessing kernel, and this addon was built without it (nvcc "
                        "was not found); leave frameBytes at 0",
                        "ERR_UNSUPPORTED");
  }
#endif
  auto* worker = new OpenWorker(info.Env(), std::move(options));
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace deimv2
