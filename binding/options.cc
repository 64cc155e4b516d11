#include "options.h"

#include <algorithm>
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
  out.recordingPath = ExpectString(options, "recording", true);

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
  out.frameBytes = ExpectIntOption(options, "frameBytes", 0, std::numeric_limits<int32_t>::max(), 0);
  out.cudaGraphs = ExpectBool(options, "cudaGraphs", true);
  return out;
}

namespace {

// A typed array of the given element type, or TypeError naming `name`.
template <typename T>
Napi::TypedArrayOf<T> ExpectTypedArray(const Napi::Value& value, napi_typedarray_type type, const char* expected,
                                       const char* name) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != type) {
    ThrowTypeError(value, expected, name);
  }
  return value.As<Napi::TypedArrayOf<T>>();
}

// "Expected an integer between 1 and 320 for plan[2].outWidth but received 400"
[[noreturn]] void ThrowFieldRange(Napi::Env env, size_t image, const char* field, const std::string& expected,
                                  int64_t received) {
  throw Napi::RangeError::New(env, "Expected " + expected + " for plan[" + std::to_string(image) + "]." + field +
                                       " but received " + std::to_string(received));
}

void CheckField(Napi::Env env, size_t image, const char* field, int64_t value, int64_t min, int64_t max) {
  if (value < min || value > max) {
    ThrowFieldRange(env, image, field, "an integer between " + std::to_string(min) + " and " + std::to_string(max), value);
  }
}

// One resampling table: inSize -> outSize with `taps` weights per output; every window inside the input.
void CheckTable(Napi::Env env, size_t image, const char* axis, const std::vector<int32_t>& tables, int64_t offset,
                int64_t taps, int64_t inSize, int64_t outSize) {
  std::string tableField = std::string(axis) + "Table";
  std::string tapsField = std::string(axis) + "Taps";
  CheckField(env, image, tapsField.c_str(), taps, 1, inSize);
  int64_t length = outSize * 2 + outSize * taps;
  CheckField(env, image, tableField.c_str(), offset, 0, static_cast<int64_t>(tables.size()) - length);
  for (int64_t i = 0; i < outSize; ++i) {
    int64_t first = tables[static_cast<size_t>(offset + 2 * i)];
    int64_t count = tables[static_cast<size_t>(offset + 2 * i + 1)];
    if (first < 0 || count < 0 || count > taps || first + count > inSize) {
      throw Napi::RangeError::New(env, "Expected a window inside the image (first >= 0, count <= " + std::to_string(taps) +
                                           ", first + count <= " + std::to_string(inSize) + ") for plan[" +
                                           std::to_string(image) + "]." + tableField + " entry " + std::to_string(i) +
                                           " but received first " + std::to_string(first) + ", count " + std::to_string(count));
    }
  }
}

}  // namespace

FramePlan ParseFramePlan(const Napi::Value& plan, const Napi::Value& tables, const Napi::Value& lut, int32_t batch,
                         size_t frameBytes, int32_t planeSide) {
  Napi::Env env = plan.Env();
  auto planArray = ExpectTypedArray<int32_t>(plan, napi_int32_array, "an Int32Array", "plan");
  auto tableArray = ExpectTypedArray<int32_t>(tables, napi_int32_array, "an Int32Array", "tables");
  auto lutArray = ExpectTypedArray<float>(lut, napi_float32_array, "a Float32Array", "lut");
  const size_t planLength = static_cast<size_t>(batch) * kFrameItemFields;
  if (planArray.ElementLength() != planLength) {
    std::string expected = "an Int32Array of " + std::to_string(planLength) + " values (" + std::to_string(kFrameItemFields) +
                           " per image, batch " + std::to_string(batch) + ")";
    throw Napi::RangeError::New(env, "Expected " + expected + " for plan but received " +
                                         std::to_string(planArray.ElementLength()) + " values");
  }
  if (lutArray.ElementLength() != kLutSize) {
    throw Napi::RangeError::New(env, "Expected a Float32Array of " + std::to_string(kLutSize) + " values for lut but received " +
                                         std::to_string(lutArray.ElementLength()) + " values");
  }
  FramePlan out;
  out.tables.assign(tableArray.Data(), tableArray.Data() + tableArray.ElementLength());
  out.lut.assign(lutArray.Data(), lutArray.Data() + lutArray.ElementLength());
  const int32_t* fields = planArray.Data();
  for (size_t image = 0; image < static_cast<size_t>(batch); ++image) {
    const int32_t* f = fields + image * kFrameItemFields;
    FrameItem item{f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9], f[10], f[11]};
    CheckField(env, image, "srcWidth", item.srcWidth, 1, 65535);
    CheckField(env, image, "srcHeight", item.srcHeight, 1, 65535);
    CheckField(env, image, "srcStride", item.srcStride, int64_t{item.srcWidth} * 3, std::numeric_limits<int32_t>::max());
    // The last row ends at offset + (height - 1) * stride + width * 3; all of it inside the staging.
    const int64_t frameSpan = int64_t{item.srcHeight - 1} * item.srcStride + int64_t{item.srcWidth} * 3;
    if (static_cast<int64_t>(frameBytes) < frameSpan) {
      ThrowFieldRange(env, image, "srcHeight", "a frame that fits the " + std::to_string(frameBytes) + "-byte staging buffer",
                      item.srcHeight);
    }
    CheckField(env, image, "frameOffset", item.frameOffset, 0, static_cast<int64_t>(frameBytes) - frameSpan);
    CheckField(env, image, "outWidth", item.outWidth, 1, planeSide);
    CheckField(env, image, "outHeight", item.outHeight, 1, planeSide);
    CheckField(env, image, "offsetX", item.offsetX, 0, planeSide - item.outWidth);
    CheckField(env, image, "offsetY", item.offsetY, 0, planeSide - item.outHeight);
    CheckTable(env, image, "h", out.tables, item.hTable, item.hTaps, item.srcWidth, item.outWidth);
    CheckTable(env, image, "v", out.tables, item.vTable, item.vTaps, item.srcHeight, item.outHeight);
    out.frameBytesUsed = std::max(out.frameBytesUsed, static_cast<size_t>(item.frameOffset + frameSpan));
    out.items.push_back(item);
  }
  return out;
}

Napi::Value CheckFramePlan(const Napi::CallbackInfo& info) {
  int32_t batch = ExpectInt(info[3], "batch", 1, kMaxBatchLimit);
  int32_t frameBytes = ExpectInt(info[4], "frameBytes", 0, std::numeric_limits<int32_t>::max());
  int32_t planeSide = ExpectInt(info[5], "planeSide", 1, 65535);
  FramePlan plan = ParseFramePlan(info[0], info[1], info[2], batch, static_cast<size_t>(frameBytes), planeSide);
  Napi::Object result = Napi::Object::New(info.Env());
  result.Set("frameBytesUsed", Napi::Number::New(info.Env(), static_cast<double>(plan.frameBytesUsed)));
  return result;
}

}  // namespace deimv2
