// A native failure with a stable code, thrown by the runtime layer and the addon's core; the async
// workers turn it into a rejected promise whose error has `code` (never abort(), never a silent status).
#pragma once

#include <stdexcept>
#include <string>

namespace deimv2 {

class NativeError : public std::runtime_error {
 public:
  NativeError(const std::string& message, const char* code) : std::runtime_error(message), code_(code) {}
  const char* code() const noexcept { return code_; }

 private:
  const char* code_;
};

}  // namespace deimv2
