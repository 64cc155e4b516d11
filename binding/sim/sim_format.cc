#include "sim/sim_format.h"

#include <cstring>
#include <fstream>
#include <iterator>

namespace deimv2 {
namespace sim {

namespace {

class Writer {
 public:
  template <typename T>
  void Put(T value) {
    const auto* bytes = reinterpret_cast<const char*>(&value);
    out.insert(out.end(), bytes, bytes + sizeof(T));
  }
  void Bytes(const void* data, size_t size) {
    const auto* bytes = static_cast<const char*>(data);
    out.insert(out.end(), bytes, bytes + size);
  }
  void String(const std::string& text) {
    Put<uint32_t>(static_cast<uint32_t>(text.size()));
    Bytes(text.data(), text.size());
  }
  std::vector<char> out;
};

// Bounds-checked reading; every overrun is a clear error naming the file.
class Reader {
 public:
  Reader(const char* data, size_t size, std::string what, const char* code)
      : data_(data), size_(size), what_(std::move(what)), code_(code) {}
  template <typename T>
  T Get(const char* field) {
    Need(sizeof(T), field);
    T value;
    std::memcpy(&value, data_ + at_, sizeof(T));
    at_ += sizeof(T);
    return value;
  }
  const char* Take(size_t size, const char* field) {
    Need(size, field);
    const char* p = data_ + at_;
    at_ += size;
    return p;
  }
  std::string String(const char* field) {
    uint32_t size = Get<uint32_t>(field);
    if (size > 4096) Fail(std::string("implausible length of ") + field);
    return std::string(Take(size, field), size);
  }
  size_t Left() const { return size_ - at_; }
  [[noreturn]] void Fail(const std::string& why) const { throw NativeError(what_ + ": " + why, code_); }

 private:
  void Need(size_t size, const char* field) const {
    if (size > size_ - at_) Fail(std::string("ends inside ") + field + " (truncated)");
  }
  const char* data_;
  size_t size_;
  size_t at_ = 0;
  std::string what_;
  const char* code_;
};

void PutTensors(Writer& w, const std::vector<rt::TensorInfo>& tensors) {
  w.Put<uint32_t>(static_cast<uint32_t>(tensors.size()));
  for (const rt::TensorInfo& t : tensors) {
    w.String(t.name);
    w.Put<uint8_t>(t.isInput ? 1 : 0);
    w.Put<uint8_t>(static_cast<uint8_t>(t.type));
    w.Put<int32_t>(t.shape.rank);
    for (int32_t i = 0; i < t.shape.rank; ++i) w.Put<int64_t>(t.shape.d[i]);
  }
}

std::vector<rt::TensorInfo> GetTensors(Reader& r) {
  uint32_t count = r.Get<uint32_t>("the tensor count");
  if (count == 0 || count > 64) r.Fail("implausible tensor count " + std::to_string(count));
  std::vector<rt::TensorInfo> tensors(count);
  for (rt::TensorInfo& t : tensors) {
    t.name = r.String("a tensor name");
    t.isInput = r.Get<uint8_t>("a tensor's direction") != 0;
    uint8_t type = r.Get<uint8_t>("a tensor's type");
    if (type > static_cast<uint8_t>(rt::DType::kOther)) r.Fail("unknown type code " + std::to_string(type));
    t.type = static_cast<rt::DType>(type);
    t.rawType = type;
    t.shape.rank = r.Get<int32_t>("a tensor's rank");
    if (t.shape.rank < 0 || t.shape.rank > rt::kMaxRank) r.Fail("tensor '" + t.name + "' has rank " + std::to_string(t.shape.rank));
    for (int32_t i = 0; i < t.shape.rank; ++i) t.shape.d[i] = r.Get<int64_t>("a tensor dimension");
  }
  return tensors;
}

void GetRecords(Reader& r, size_t tensors, std::vector<Record>* records) {
  uint32_t count = r.Get<uint32_t>("the record count");
  for (uint32_t i = 0; i < count; ++i) {
    Record record;
    for (size_t t = 0; t < tensors; ++t) {
      uint64_t size = r.Get<uint64_t>("a record's size");
      if (size > r.Left()) r.Fail("record " + std::to_string(i) + " ends past the end of the file (truncated)");
      const char* bytes = r.Take(static_cast<size_t>(size), "a record");
      record.items.emplace_back(reinterpret_cast<const uint8_t*>(bytes), reinterpret_cast<const uint8_t*>(bytes) + size);
    }
    records->push_back(std::move(record));
  }
}

std::vector<char> ReadWhole(const std::string& path, const char* what, const char* code) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw NativeError(std::string("cannot open ") + what + " " + path, code);
  return std::vector<char>((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
}

// --- a minimal protobuf reader for ONNX's ModelProto -> GraphProto -> ValueInfoProto ---
struct Proto {
  const uint8_t* p;
  const uint8_t* end;
  const std::string* path;
  [[noreturn]] void Fail() const { throw NativeError(*path + " is not a readable ONNX model", "ERR_MODEL_INVALID"); }
  uint64_t Varint() {
    uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p >= end) Fail();
      uint8_t byte = *p++;
      value |= static_cast<uint64_t>(byte & 0x7F) << shift;
      if ((byte & 0x80) == 0) return value;
    }
    Fail();
  }
  // Calls visit(field, wire, sub) for each field; length-delimited fields come as a sub-reader.
  template <typename Visit>
  void Fields(Visit visit) {
    while (p < end) {
      uint64_t key = Varint();
      uint32_t field = static_cast<uint32_t>(key >> 3);
      uint32_t wire = static_cast<uint32_t>(key & 7);
      if (wire == 0) {
        uint64_t v = Varint();
        Proto none{p, p, path};
        visit(field, wire, none, v);
      } else if (wire == 2) {
        uint64_t size = Varint();
        if (size > static_cast<uint64_t>(end - p)) Fail();
        Proto sub{p, p + size, path};
        p += size;
        visit(field, wire, sub, 0);
      } else if (wire == 1) {
        if (end - p < 8) Fail();
        p += 8;
      } else if (wire == 5) {
        if (end - p < 4) Fail();
        p += 4;
      } else {
        Fail();
      }
    }
  }
  std::string Text() const { return std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(end - p)); }
};

rt::DType FromOnnx(uint64_t type) {
  switch (type) {
    case 1: return rt::DType::kFloat;
    case 2: return rt::DType::kUInt8;
    case 3: return rt::DType::kInt8;
    case 6: return rt::DType::kInt32;
    case 7: return rt::DType::kInt64;
    case 9: return rt::DType::kBool;
    case 10: return rt::DType::kHalf;
    case 16: return rt::DType::kBF16;
    default: return rt::DType::kOther;
  }
}

rt::TensorInfo ValueInfo(Proto info, bool input) {
  rt::TensorInfo tensor;
  tensor.isInput = input;
  tensor.shape.rank = 0;
  info.Fields([&](uint32_t field, uint32_t wire, Proto& sub, uint64_t) {
    if (field == 1 && wire == 2) tensor.name = sub.Text();
    if (field != 2 || wire != 2) return;
    sub.Fields([&](uint32_t f, uint32_t w, Proto& typeSub, uint64_t) {  // TypeProto.tensor_type
      if (f != 1 || w != 2) return;
      typeSub.Fields([&](uint32_t f2, uint32_t w2, Proto& t, uint64_t v) {
        if (f2 == 1 && w2 == 0) {
          tensor.type = FromOnnx(v);
          tensor.rawType = static_cast<int32_t>(v);
        }
        if (f2 != 2 || w2 != 2) return;
        t.Fields([&](uint32_t f3, uint32_t w3, Proto& dim, uint64_t) {  // TensorShapeProto.dim
          if (f3 != 1 || w3 != 2 || tensor.shape.rank >= rt::kMaxRank) return;
          int64_t value = -1;
          dim.Fields([&](uint32_t f4, uint32_t w4, Proto&, uint64_t dv) {
            if (f4 == 1 && w4 == 0) value = static_cast<int64_t>(dv);
          });
          tensor.shape.d[tensor.shape.rank++] = value;
        });
      });
    });
  });
  return tensor;
}

}  // namespace

uint64_t Fnv1a(const uint8_t* data, size_t size, uint64_t hash) {
  for (size_t i = 0; i < size; ++i) {
    hash ^= data[i];
    hash *= 1099511628211ULL;
  }
  return hash;
}

size_t ElementSize(rt::DType type) {
  switch (type) {
    case rt::DType::kFloat: case rt::DType::kInt32: return 4;
    case rt::DType::kHalf: case rt::DType::kBF16: return 2;
    case rt::DType::kInt64: return 8;
    case rt::DType::kOther: return 0;
    default: return 1;
  }
}

const char* DTypeName(rt::DType type) {
  static const char* const kNames[] = {"float32", "float16", "bfloat16", "int8", "uint8", "bool", "int32", "int64", "other"};
  return kNames[static_cast<int>(type)];
}

std::vector<char> SerializeEngine(const EngineData& engine) {
  Writer payload;
  payload.String(engine.deviceName);
  PutTensors(payload, engine.tensors);
  payload.Put<int32_t>(engine.minBatch);
  payload.Put<int32_t>(engine.optBatch);
  payload.Put<int32_t>(engine.maxBatch);
  payload.Put<uint32_t>(static_cast<uint32_t>(engine.records.size()));
  for (const Record& record : engine.records) {
    for (const auto& item : record.items) {
      payload.Put<uint64_t>(item.size());
      payload.Bytes(item.data(), item.size());
    }
  }
  Writer file;
  file.Bytes(kEngineMagic, sizeof(kEngineMagic));
  file.Put<uint32_t>(kEngineFormat);
  file.Put<uint64_t>(payload.out.size());
  file.Put<uint64_t>(Fnv1a(reinterpret_cast<const uint8_t*>(payload.out.data()), payload.out.size()));
  file.Bytes(payload.out.data(), payload.out.size());
  return file.out;
}

EngineData DeserializeEngine(const std::vector<char>& bytes, const std::string& path) {
  const std::string what = "engine file " + path;
  if (bytes.size() < sizeof(kEngineMagic) || std::memcmp(bytes.data(), kEngineMagic, sizeof(kEngineMagic)) != 0) {
    throw NativeError(what + " is not a simulated engine (no DEIMV2SIMENGINE header: foreign bytes, or an engine of "
                             "the real TensorRT runtime)",
                      "ERR_ENGINE_INVALID");
  }
  Reader header(bytes.data() + sizeof(kEngineMagic), bytes.size() - sizeof(kEngineMagic), what, "ERR_ENGINE_INVALID");
  uint32_t format = header.Get<uint32_t>("the header");
  if (format != kEngineFormat) {
    header.Fail("simulated engine format " + std::to_string(format) + ", this runtime reads format " + std::to_string(kEngineFormat));
  }
  uint64_t size = header.Get<uint64_t>("the header");
  uint64_t checksum = header.Get<uint64_t>("the header");
  if (size != header.Left()) {
    header.Fail("the header says " + std::to_string(size) + " payload bytes but the file has " + std::to_string(header.Left()) +
                (size > header.Left() ? " (truncated)" : " (trailing bytes)"));
  }
  const char* payload = header.Take(static_cast<size_t>(size), "the payload");
  if (Fnv1a(reinterpret_cast<const uint8_t*>(payload), static_cast<size_t>(size)) != checksum) {
    header.Fail("checksum mismatch (the file is corrupt)");
  }
  Reader r(payload, static_cast<size_t>(size), what, "ERR_ENGINE_INVALID");
  EngineData engine;
  engine.deviceName = r.String("the device name");
  engine.tensors = GetTensors(r);
  engine.minBatch = r.Get<int32_t>("the profile");
  engine.optBatch = r.Get<int32_t>("the profile");
  engine.maxBatch = r.Get<int32_t>("the profile");
  GetRecords(r, engine.tensors.size(), &engine.records);
  return engine;
}

std::vector<rt::TensorInfo> ReadOnnxIo(const std::string& path) {
  std::vector<char> bytes = ReadWhole(path, "ONNX model", "ERR_INPUT_NOT_FOUND");
  std::vector<rt::TensorInfo> inputs, outputs;
  std::vector<std::string> initializers;
  Proto model{reinterpret_cast<const uint8_t*>(bytes.data()), reinterpret_cast<const uint8_t*>(bytes.data()) + bytes.size(), &path};
  bool sawGraph = false;
  model.Fields([&](uint32_t field, uint32_t wire, Proto& graph, uint64_t) {
    if (field != 7 || wire != 2) return;  // ModelProto.graph
    sawGraph = true;
    graph.Fields([&](uint32_t f, uint32_t w, Proto& sub, uint64_t) {
      if (w != 2) return;
      if (f == 11) inputs.push_back(ValueInfo(sub, true));
      if (f == 12) outputs.push_back(ValueInfo(sub, false));
      if (f == 5) {  // initializer (TensorProto.name = 8): older exports list them as inputs too
        sub.Fields([&](uint32_t f2, uint32_t w2, Proto& name, uint64_t) {
          if (f2 == 8 && w2 == 2) initializers.push_back(name.Text());
        });
      }
    });
  });
  if (!sawGraph || outputs.empty()) throw NativeError(path + " is not an ONNX model with a graph", "ERR_MODEL_INVALID");
  std::vector<rt::TensorInfo> io;
  for (auto& t : inputs) {
    bool isInitializer = false;
    for (const auto& name : initializers) isInitializer = isInitializer || name == t.name;
    if (!isInitializer) io.push_back(std::move(t));
  }
  for (auto& t : outputs) io.push_back(std::move(t));
  return io;
}

void ReadRecording(const std::string& path, std::vector<rt::TensorInfo>* tensors, std::vector<Record>* records) {
  std::vector<char> bytes = ReadWhole(path, "recording", "ERR_INPUT_NOT_FOUND");
  const std::string what = "recording " + path;
  if (bytes.size() < sizeof(kRecordingMagic) || std::memcmp(bytes.data(), kRecordingMagic, sizeof(kRecordingMagic)) != 0) {
    throw NativeError(what + " is not a deimv2 recording (no DEIMV2RECORDING1 header)", "ERR_INVALID_ARGUMENT");
  }
  Reader r(bytes.data() + sizeof(kRecordingMagic), bytes.size() - sizeof(kRecordingMagic), what, "ERR_INVALID_ARGUMENT");
  *tensors = GetTensors(r);
  GetRecords(r, tensors->size(), records);
  if (r.Left() != 0) r.Fail(std::to_string(r.Left()) + " trailing bytes");
}

}  // namespace sim
}  // namespace deimv2
