// Runs native work so that NOTHING escapes as a C++ exception into N-API or libuv (which would
// terminate the process): NativeError keeps its code, std::exception becomes ERR_NATIVE, and any
// other thrown value (a non-standard exception from a library) becomes ERR_NATIVE too.
#pragma once

#include <exception>
#include <string>

#include "native_error.h"

namespace deimv2 {

// Calls work(); on failure stores the message and code and returns false.
template <typename Work>
bool GuardCall(Work&& work, std::string* message, const char** code) noexcept {
  try {
    work();
    return true;
  } catch (const NativeError& e) {
    *code = e.code();
    *message = e.what();
  } catch (const std::bad_alloc&) {
    *code = "ERR_NATIVE";
    *message = "out of host memory";
  } catch (const std::exception& e) {
    *code = "ERR_NATIVE";
    *message = e.what();
  } catch (...) {
    *code = "ERR_NATIVE";
    *message = "a native library threw a non-standard exception";
  }
  return false;
}

}  // namespace deimv2
