// What the simulated runtime holds now, and the contract violations it saw that it could not throw
// for (teardown calls are noexcept): read by the addon's simulator() for tests.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace deimv2 {
namespace sim {

struct Stats {
  size_t deviceBytes = 0;
  size_t deviceAllocations = 0;
  size_t pinnedBytes = 0;
  size_t pinnedAllocations = 0;
  size_t streams = 0;
  size_t events = 0;
  size_t graphs = 0;
  size_t contexts = 0;
  size_t engines = 0;
  size_t kernelLaunches = 0;
  size_t graphLaunches = 0;
  size_t enqueues = 0;
  std::vector<std::string> violations;
};

Stats CurrentStats();

}  // namespace sim
}  // namespace deimv2

namespace deimv2 {
namespace sim {
// Remembers the calling thread as the JS thread: frees there are recorded as violations.
void MarkJsThread();
}  // namespace sim
}  // namespace deimv2
