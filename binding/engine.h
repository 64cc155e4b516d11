// A deserialized engine on one GPU with its pool of execution-context slots, as a JS object.
//
//   const engine = await addon.openEngine({ engine: 'femto.engine', device: 0, contexts: 2 });
//   engine.tensors      // [{ name, input, dtype, shape }]  (shape with -1 on the batch axis)
//   engine.profile      // { min, opt, max } batch
//   engine.buffers(0)   // { images: ArrayBuffer, ... } pinned memory of slot 0, created once per slot
//   await engine.infer(0, batch)  // inputs read from slot 0's buffers, outputs written to them
//   engine.frames(0)              // slot 0's pinned uint8 frame staging (openEngine's frameBytes > 0)
//   await engine.inferFrames(0, batch, plan, tables, lut)  // the kernel makes the image input from frames
//   engine.cudaGraphs             // per slot: { enabled, batch, failure }
//   engine.gpuPreprocessing       // { enabled, reason }: off when frameBytes was 0 or the kernel cannot run
//   await engine.readInput(0, batch)  // device image input -> slot 0's pinned images buffer (checks)
//   await engine.close()          // waits for infers in flight, then frees GPU and pinned memory off
//                                 // the JS thread; every call returns the same promise
//
// Threads: each slot has its own thread (slot_runner.h) that issues the slot's work and waits for its
// event; the outcome comes back to the JS thread through a thread-safe function. So infers in flight
// hold no libuv pool thread (file I/O keeps all of them); open and close use one briefly.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "context_slot.h"
#include "napi_config.h"
#include "options.h"
#include "runtime/gpu_runtime.h"
#include "slot_runner.h"

namespace deimv2 {

struct Completion;

// The native state, shared by the JS object and every worker that uses it, so a worker in flight
// keeps it alive even if the JS object is collected. Member order is destruction order reversed:
// slots (contexts) go first, then the engine. Its last reference is always dropped off the JS
// thread (close worker or teardown thread) after SetDevice(device).
struct LoadedEngine {
  explicit LoadedEngine(rt::GpuRuntime& rt) : runtime(rt) {}
  rt::GpuRuntime& runtime;
  std::unique_ptr<rt::Engine> engine;
  std::vector<IoTensor> io;
  std::vector<std::unique_ptr<ContextSlot>> slots;
  // One thread per slot; declared after the slots, so joined before any slot is destroyed.
  std::vector<std::unique_ptr<SlotRunner>> runners;
  int32_t device = 0;
  int32_t minBatch = 1;
  int32_t optBatch = 1;
  int32_t maxBatch = 1;
  std::string path;
  std::string kernelFallback;  // why GPU preprocessing was turned off although frameBytes > 0
  bool gpuPreprocessing = false;
};

// Reads, deserializes and pools an engine file (on a worker thread). Throws NativeError:
// ERR_ENGINE_INVALID when the runtime cannot deserialize it (corrupt, truncated, other version/GPU).
std::shared_ptr<LoadedEngine> LoadEngine(rt::GpuRuntime& runtime, OpenOptions options);

// Frees an engine: SetDevice(device) then the destructors, never throwing.
void ReleaseEngine(std::shared_ptr<LoadedEngine> loaded) noexcept;

// openEngine(options) -> Promise<TensorRtEngine>: validates, then loads on a worker thread.
Napi::Value OpenEngine(const Napi::CallbackInfo& info);

class Engine : public Napi::ObjectWrap<Engine> {
 public:
  static Napi::Function Define(Napi::Env env);
  // Wraps a loaded engine in a new JS object (called on the JS thread when openEngine settles).
  static Napi::Object Wrap(Napi::Env env, std::shared_ptr<LoadedEngine> loaded);

  explicit Engine(const Napi::CallbackInfo& info);
  ~Engine() override;

  // On the JS thread, when a slot's job has finished: settles its promise.
  static void Deliver(Napi::Env env, Napi::Function unused, Engine* engine, Completion* done);
  using Notifier = Napi::TypedThreadSafeFunction<Engine, Completion, &Engine::Deliver>;

 private:
  Napi::Value Tensors(const Napi::CallbackInfo& info);
  Napi::Value Profile(const Napi::CallbackInfo& info);
  Napi::Value SlotCount(const Napi::CallbackInfo& info);
  Napi::Value Closed(const Napi::CallbackInfo& info);
  Napi::Value Buffers(const Napi::CallbackInfo& info);
  Napi::Value Frames(const Napi::CallbackInfo& info);
  Napi::Value CudaGraphs(const Napi::CallbackInfo& info);
  Napi::Value GpuPreprocessing(const Napi::CallbackInfo& info);
  Napi::Value Infer(const Napi::CallbackInfo& info);
  Napi::Value InferFrames(const Napi::CallbackInfo& info);
  Napi::Value ReadInput(const Napi::CallbackInfo& info);
  Napi::Value IsBusy(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  void Attach(std::shared_ptr<LoadedEngine> loaded);
  void DetachBuffers();
  void CheckOpen(Napi::Env env) const;
  size_t CheckSlot(const Napi::Value& value) const;
  void StartClose(Napi::Env env);
  void Settle(Napi::Env env, size_t slot);
  void ReleaseNotifier();
  bool NotifierUsable() const;
  // Marks the slot busy (or throws ERR_SLOT_BUSY) and queues its run; `frames` for inferFrames().
  // `readInput` queues the image-input download instead of a run. A failure to queue leaves the slot free.
  Napi::Value QueueInfer(Napi::Env env, size_t slot, int32_t batch, std::unique_ptr<FramePlan> frames,
                         bool readInput = false);

  std::shared_ptr<LoadedEngine> loaded_;
  // One object of external ArrayBuffers per slot, made once: V8 allows one ArrayBuffer per memory block.
  std::vector<Napi::ObjectReference> slotBuffers_;
  std::vector<Napi::Reference<Napi::ArrayBuffer>> frameBuffers_;  // empty references without staging
  // The promise of each slot's job in flight (one at a time per slot).
  std::vector<std::unique_ptr<Napi::Promise::Deferred>> slotPromises_;
  Notifier notifier_;
  bool notifierLive_ = false;                 // created and not released by us
  std::shared_ptr<bool> notifierAlive_;       // cleared by its finalizer
  size_t inFlight_ = 0;
  bool closing_ = false;
  std::vector<Napi::Promise::Deferred> closeWaiters_;
  // The one promise every close() returns, so a second close() waits for the first one's freeing.
  Napi::ObjectReference closePromise_;
};

}  // namespace deimv2
