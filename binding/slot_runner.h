// One thread per context slot that runs the slot's work: issue on its stream, then wait for its
// event. In-flight infers thus never hold a libuv pool thread (which file I/O and the other addons
// share): a job hands its outcome back to the JS thread itself (engine.cc, a thread-safe function).
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace deimv2 {

class SlotRunner {
 public:
  SlotRunner() : thread_([this] { Run(); }) {}
  // Finishes the queued jobs, then joins (called off the JS thread, at engine teardown).
  ~SlotRunner() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    ready_.notify_one();
    if (thread_.joinable()) thread_.join();
  }
  SlotRunner(const SlotRunner&) = delete;
  SlotRunner& operator=(const SlotRunner&) = delete;

  void Post(std::function<void()> job) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      jobs_.push_back(std::move(job));
    }
    ready_.notify_one();
  }

 private:
  void Run() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      ready_.wait(lock, [this] { return stop_ || !jobs_.empty(); });
      if (jobs_.empty()) return;
      std::function<void()> job = std::move(jobs_.front());
      jobs_.pop_front();
      lock.unlock();
      try {
        job();
      } catch (...) {
        // jobs report through their own guard; nothing may end this thread
      }
      job = nullptr;
      lock.lock();
    }
  }

  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> jobs_;
  bool stop_ = false;
  std::thread thread_;  // last: started once the members above exist
};

}  // namespace deimv2
