#include "options.h"

#include <cmath>
#include <limits>

namespace deimv2 {

namespace {

const char* TypeName(const Napi::Value& value) {
  switch (value.Type()) {
    case napi_undefined: return "undefined";
    case napi_null: return "null";
    case napi_boolean: return "boolean";
    case napi_number: return "number";
    case napi_string: return "string";
    case napi_symbol: return "symbol";
    case napi_object: return "object";
    case napi_function: return "function";
    case napi_external: return "external";
    case napi_bigint: return "bigint";
  }
  return "unknown";
}

Napi::Object ExpectObject(const Napi::Value& value, const char* name) {
  if (!value.IsObject() || value.IsArray() || value.IsFunction()) ThrowTypeError(value, "an object", name);
  return value.As<Napi::Object>();
}

std::string ExpectString(const Napi::Object& options, const char* name, bool optional) {
  Napi::Value value = options.Get(name);
  if (optional && value.IsUndefined()) return std::string();
  if (!value.IsString()) ThrowTypeError(value, "a string", name);
  std::string text = value.As<Napi::String>().Utf8Value();
  if (text.empty()) ThrowRangeError(value, "a non-empty string", name);
  if (text.find('\0') != std::string::npos) ThrowRangeError(value, "a path without NUL characters", name);
  return text;
}

bool ExpectBool(const Napi::Object& options, const char* name, bool fallback) {
  Napi::Value value = options.Get(name);
  if (value.IsUndefined()) return fallback;
  if (!value.IsBoolean()) ThrowTypeError(value, "a boolean", name);
  return value.As<Napi::Boolean>().Value();
}

int32_t ExpectIntOption(const Napi::Object& options, const char* name, int32_t min, int32_t max, int32_t fallback) {
  Napi::Value value = options.Get(name);
  if (value.IsUndefined()) return fallback;
  return ExpectInt(value, name, min, max);
}

}  // namespace

std::string DescribeValue(const Napi::Value& value) {
  switch (value.Type()) {
    case napi_string: return "'" + value.As<Napi::String>().Utf8Value() + "'";
    case napi_number: {
      double number = value.As<Napi::Number>().DoubleValue();
      if (std::isfinite(number) && number == std::floor(number) && std::fabs(number) < 1e15) {
        return std::to_string(static_cast<int64_t>(number));
      }
      return std::to_string(number);
    }
    case napi_boolean: return value.As<Napi::Boolean>().Value() ? "true" : "false";
    case napi_undefined: return "undefined";
    case napi_null: return "null";
    default: return std::string("[") + TypeName(value) + "]";
  }
}

void ThrowTypeError(const Napi::Value& value, const char* expected, const char* name) {
  throw Napi::TypeError::New(value.Env(), std::string("Expected ") + expected + " for " + name + " but received " +
                                              DescribeValue(value) + " of type " + TypeName(value));
}

void ThrowRangeError(const Napi::Value& value, const char* expected, const char* name) {
  throw Napi::RangeError::New(value.Env(), std::string("Expected ") + expected + " for " + name + " but received " +
                                               DescribeValue(value) + " of type " + TypeName(value));
}

Napi::Error ErrorWithCode(Napi::Env env, const std::string& message, const char* code) {
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  return error;
}

int32_t ExpectInt(const Napi::Value& value, const char* name, int32_t min, int32_t max) {
  if (!value.IsNumber()) ThrowTypeError(value, "an integer", name);
  double number = value.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(number) || number != std::floor(number)) ThrowTypeError(value, "an integer", name);
  if (number < min || number > max) {
    std::string expected = "an integer between " + std::to_string(min) + " and " + std::to_string(max);
    ThrowRangeError(value, expected.c_str(), name);
  }
  return static_cast<int32_t>(number);
}

Napi::Function ExpectFunction(const Napi::Value& value, const char* name, bool optional) {
  if (optional && value.IsUndefined()) return Napi::Function();
  if (!value.IsFunction()) ThrowTypeError(value, "a function", name);
  return value.As<Napi::Function>();
}

BuildOptions ParseBuildOptions(const Napi::Value& value) {
  Napi::Object options = ExpectObject(value, "options");
  BuildOptions out;
  out.onnxPath = ExpectString(options, "onnx", false);
  out.enginePath = ExpectString(options, "engine", false);
  out.timingCachePath = ExpectString(options, "timingCache", true);

  Napi::Value precision = options.Get("precision");
  if (!precision.IsString()) ThrowTypeError(precision, "'fp16' or 'fp32'", "precision");
  std::string name = precision.As<Napi::String>().Utf8Value();
  if (name != "fp16" && name != "fp32") ThrowRangeError(precision, "'fp16' or 'fp32'", "precision");
  out.fp16 = name == "fp16";
  out.stronglyTyped = ExpectBool(options, "stronglyTyped", false);

  out.minBatch = ExpectIntOption(options, "minBatch", 1, kMaxBatchLimit, 1);
  out.maxBatch = ExpectIntOption(options, "maxBatch", 1, kMaxBatchLimit, out.minBatch);
  out.optBatch = ExpectIntOption(options, "optBatch", 1, kMaxBatchLimit, out.maxBatch);
  if (out.minBatch > out.maxBatch) {
    std::string expected = "an integer >= minBatch (" + std::to_string(out.minBatch) + ")";
    ThrowRangeError(options.Get("maxBatch"), expected.c_str(), "maxBatch");
  }
  if (out.optBatch < out.minBatch || out.optBatch > out.maxBatch) {
    std::string expected =
        "an integer between minBatch and maxBatch (" + std::to_string(out.minBatch) + ".." + std::to_string(out.maxBatch) + ")";
    ThrowRangeError(options.Get("optBatch"), expected.c_str(), "optBatch");
  }

  // Workspace in MiB: a JS number holds any realistic size exactly, a uint64 of bytes would not fit.
  int32_t workspaceMiB = ExpectIntOption(options, "workspaceMiB", 0, 1 << 20, 0);
  out.workspaceBytes = static_cast<uint64_t>(workspaceMiB) << 20;
  out.device = ExpectIntOption(options, "device", 0, kMaxDevice, 0);
  return out;
}

OpenOptions ParseOpenOptions(const Napi::Value& value) {
  Napi::Object options = ExpectObject(value, "options");
  OpenOptions out;
  out.enginePath = ExpectString(options, "engine", false);
  out.device = ExpectIntOption(options, "device", 0, kMaxDevice, 0);
  out.contexts = ExpectIntOption(options, "contexts", 1, kMaxContexts, 2);
  return out;
}

}  // namespace deimv2
