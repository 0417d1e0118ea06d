// Safetensors reading and writing (engine/safetensors.h), with a small strict JSON parser for the
// header's subset of JSON: objects, strings with escapes, arrays and non-negative integers.
#include "engine/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <set>
#include <utility>

#include "engine/check.h"
#include "engine/files.h"

namespace pneumo {

namespace {

constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // the reference implementation's limit
constexpr int kMaxJsonDepth = 8;
const char* const kMetadataKey = "__metadata__";

void require_little_endian_host(const std::string& path) {
  const uint32_t probe = 1;
  unsigned char first;
  std::memcpy(&first, &probe, 1);
  if (first != 1) throw Error(path + ": safetensors I/O needs a little-endian host");
}

// ---- a strict JSON parser for the header --------------------------------------------------

struct JsonValue {
  enum class Kind { Object, Array, String, Integer };
  Kind kind = Kind::Object;
  std::vector<std::pair<std::string, JsonValue>> members;  // Object, in file order
  std::vector<JsonValue> elements;                         // Array
  std::string text;                                        // String
  uint64_t integer = 0;                                    // Integer (non-negative)
};

const char* kind_name(JsonValue::Kind kind) {
  switch (kind) {
    case JsonValue::Kind::Object: return "an object";
    case JsonValue::Kind::Array: return "an array";
    case JsonValue::Kind::String: return "a string";
    case JsonValue::Kind::Integer: return "an integer";
  }
  return "?";
}

class JsonParser {
 public:
  JsonParser(const std::string& text, const std::string& path) : text_(text), path_(path) {}

  // One value, then only whitespace (the writer pads the header with spaces).
  JsonValue parse_document() {
    skip_whitespace();
    JsonValue value = parse_value(0);
    skip_whitespace();
    if (position_ != text_.size()) fail("unexpected text after the header object");
    return value;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(path_ + ": bad safetensors header JSON at header byte " + std::to_string(position_) + ": " + what);
  }
  bool at_end() const { return position_ >= text_.size(); }
  char peek() const { return at_end() ? '\0' : text_[position_]; }
  void expect(char wanted) {
    if (at_end() || text_[position_] != wanted)
      fail(std::string("expected '") + wanted + "'" + (at_end() ? " before the end" : ""));
    ++position_;
  }
  void skip_whitespace() {
    while (!at_end() && (peek() == ' ' || peek() == '\t' || peek() == '\n' || peek() == '\r')) ++position_;
  }

  JsonValue parse_value(int depth) {
    if (depth > kMaxJsonDepth) fail("nested too deeply");
    JsonValue value;
    const char next = peek();
    if (next == '{') {
      value.kind = JsonValue::Kind::Object;
      ++position_;
      skip_whitespace();
      std::set<std::string> keys;
      if (peek() == '}') {
        ++position_;
        return value;
      }
      while (true) {
        skip_whitespace();
        if (peek() != '"') fail("expected a string key");
        std::string key = parse_string();
        if (!keys.insert(key).second) fail("duplicate key \"" + key + "\"");
        skip_whitespace();
        expect(':');
        skip_whitespace();
        value.members.emplace_back(std::move(key), parse_value(depth + 1));
        skip_whitespace();
        if (peek() == ',') {
          ++position_;
          continue;
        }
        expect('}');
        return value;
      }
    }
    if (next == '[') {
      value.kind = JsonValue::Kind::Array;
      ++position_;
      skip_whitespace();
      if (peek() == ']') {
        ++position_;
        return value;
      }
      while (true) {
        skip_whitespace();
        value.elements.push_back(parse_value(depth + 1));
        skip_whitespace();
        if (peek() == ',') {
          ++position_;
          continue;
        }
        expect(']');
        return value;
      }
    }
    if (next == '"') {
      value.kind = JsonValue::Kind::String;
      value.text = parse_string();
      return value;
    }
    if (next >= '0' && next <= '9') {
      value.kind = JsonValue::Kind::Integer;
      value.integer = parse_integer();
      return value;
    }
    if (at_end()) fail("unexpected end of the header");
    fail(std::string("unsupported value starting with '") + next +
         "' (only objects, arrays, strings and non-negative integers)");
  }

  uint64_t parse_integer() {
    const size_t start = position_;
    uint64_t result = 0;
    while (!at_end() && peek() >= '0' && peek() <= '9') {
      const uint64_t digit = static_cast<uint64_t>(peek() - '0');
      if (result > (std::numeric_limits<uint64_t>::max() - digit) / 10) fail("integer too large");
      result = result * 10 + digit;
      ++position_;
    }
    if (position_ - start > 1 && text_[start] == '0') fail("integer with a leading zero");
    if (peek() == '.' || peek() == 'e' || peek() == 'E') fail("non-integer number");
    return result;
  }

  unsigned parse_hex4() {
    unsigned code = 0;
    for (int i = 0; i < 4; ++i) {
      if (at_end()) fail("unfinished \\u escape");
      const char c = text_[position_++];
      code <<= 4;
      if (c >= '0' && c <= '9')
        code |= static_cast<unsigned>(c - '0');
      else if (c >= 'a' && c <= 'f')
        code |= static_cast<unsigned>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        code |= static_cast<unsigned>(c - 'A' + 10);
      else
        fail("bad hex digit in \\u escape");
    }
    return code;
  }

  static void append_utf8(std::string& out, unsigned code) {
    if (code < 0x80) {
      out += static_cast<char>(code);
    } else if (code < 0x800) {
      out += static_cast<char>(0xC0 | (code >> 6));
      out += static_cast<char>(0x80 | (code & 0x3F));
    } else if (code < 0x10000) {
      out += static_cast<char>(0xE0 | (code >> 12));
      out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (code & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (code >> 18));
      out += static_cast<char>(0x80 | ((code >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (code & 0x3F));
    }
  }

  std::string parse_string() {
    expect('"');
    std::string out;
    while (true) {
      if (at_end()) fail("unterminated string");
      const char c = text_[position_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) fail("control character inside a string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (at_end()) fail("unterminated escape");
      const char escape = text_[position_++];
      switch (escape) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          unsigned code = parse_hex4();
          if (code >= 0xDC00 && code <= 0xDFFF) fail("lone low surrogate in \\u escape");
          if (code >= 0xD800 && code <= 0xDBFF) {
            if (text_.compare(position_, 2, "\\u") != 0) fail("high surrogate without its pair");
            position_ += 2;
            const unsigned low = parse_hex4();
            if (low < 0xDC00 || low > 0xDFFF) fail("high surrogate without its pair");
            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
          }
          append_utf8(out, code);
          break;
        }
        default: fail(std::string("unknown escape \\") + escape);
      }
    }
  }

  const std::string& text_;
  const std::string& path_;
  size_t position_ = 0;
};

void append_json_string(std::string& out, const std::string& text) {
  out += '"';
  for (unsigned char c : text) {
    if (c == '"')
      out += "\\\"";
    else if (c == '\\')
      out += "\\\\";
    else if (c < 0x20) {
      char escape[8];
      std::snprintf(escape, sizeof(escape), "\\u%04x", c);
      out += escape;
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '"';
}

bool parse_dtype(const std::string& name, SafetensorsDtype* dtype) {
  if (name == "F32")
    *dtype = SafetensorsDtype::F32;
  else if (name == "I64")
    *dtype = SafetensorsDtype::I64;
  else
    return false;
  return true;
}

}  // namespace

const char* safetensors_dtype_name(SafetensorsDtype dtype) { return dtype == SafetensorsDtype::F32 ? "F32" : "I64"; }

size_t safetensors_dtype_bytes(SafetensorsDtype dtype) { return dtype == SafetensorsDtype::F32 ? 4 : 8; }

SafetensorsTensor SafetensorsTensor::from_floats(std::string name, Shape shape, const float* values) {
  SafetensorsTensor tensor;
  tensor.name = std::move(name);
  tensor.dtype = SafetensorsDtype::F32;
  tensor.shape = std::move(shape);
  tensor.bytes.resize(static_cast<size_t>(shape_count(tensor.shape)) * sizeof(float));
  if (!tensor.bytes.empty()) std::memcpy(tensor.bytes.data(), values, tensor.bytes.size());
  return tensor;
}

SafetensorsTensor SafetensorsTensor::from_int64s(std::string name, Shape shape, const int64_t* values) {
  SafetensorsTensor tensor;
  tensor.name = std::move(name);
  tensor.dtype = SafetensorsDtype::I64;
  tensor.shape = std::move(shape);
  tensor.bytes.resize(static_cast<size_t>(shape_count(tensor.shape)) * sizeof(int64_t));
  if (!tensor.bytes.empty()) std::memcpy(tensor.bytes.data(), values, tensor.bytes.size());
  return tensor;
}

std::vector<float> SafetensorsTensor::floats() const {
  if (dtype != SafetensorsDtype::F32)
    throw Error("safetensors tensor '" + name + "' has dtype " + safetensors_dtype_name(dtype) + ", expected F32");
  std::vector<float> values(bytes.size() / sizeof(float));
  if (!values.empty()) std::memcpy(values.data(), bytes.data(), values.size() * sizeof(float));
  return values;
}

std::vector<int64_t> SafetensorsTensor::int64s() const {
  if (dtype != SafetensorsDtype::I64)
    throw Error("safetensors tensor '" + name + "' has dtype " + safetensors_dtype_name(dtype) + ", expected I64");
  std::vector<int64_t> values(bytes.size() / sizeof(int64_t));
  if (!values.empty()) std::memcpy(values.data(), bytes.data(), values.size() * sizeof(int64_t));
  return values;
}

const SafetensorsTensor* SafetensorsContents::find(const std::string& name) const {
  for (const SafetensorsTensor& tensor : tensors)
    if (tensor.name == name) return &tensor;
  return nullptr;
}

void write_safetensors(const std::string& path, const SafetensorsContents& contents) {
  require_little_endian_host(path);
  // Header: metadata first, then the tensors with contiguous offsets in the given order.
  std::string header = "{";
  bool first = true;
  if (!contents.metadata.empty()) {
    append_json_string(header, kMetadataKey);
    header += ":{";
    for (const auto& [key, value] : contents.metadata) {
      if (!first) header += ',';
      first = false;
      append_json_string(header, key);
      header += ':';
      append_json_string(header, value);
    }
    header += '}';
    first = false;
  }
  std::set<std::string> names;
  uint64_t offset = 0;
  for (const SafetensorsTensor& tensor : contents.tensors) {
    if (tensor.name.empty() || tensor.name == kMetadataKey)
      throw Error(path + ": cannot write a tensor named '" + tensor.name + "'");
    if (!names.insert(tensor.name).second) throw Error(path + ": two tensors named '" + tensor.name + "'");
    for (int64_t dimension : tensor.shape)
      if (dimension < 0)
        throw Error(path + ": tensor '" + tensor.name + "' has a negative dimension in " + shape_string(tensor.shape));
    const uint64_t expected = static_cast<uint64_t>(shape_count(tensor.shape)) * safetensors_dtype_bytes(tensor.dtype);
    if (tensor.bytes.size() != expected)
      throw Error(path + ": tensor '" + tensor.name + "' of shape " + shape_string(tensor.shape) + " holds " +
                  std::to_string(tensor.bytes.size()) + " bytes, expected " + std::to_string(expected));
    if (!first) header += ',';
    first = false;
    append_json_string(header, tensor.name);
    header += ":{\"dtype\":\"";
    header += safetensors_dtype_name(tensor.dtype);
    header += "\",\"shape\":[";
    for (size_t i = 0; i < tensor.shape.size(); ++i) header += (i ? "," : "") + std::to_string(tensor.shape[i]);
    header += "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + expected) + "]}";
    offset += expected;
  }
  header += '}';
  while (header.size() % 8 != 0) header += ' ';  // data starts 8-byte aligned
  unsigned char length[8];
  const uint64_t header_length = header.size();
  for (int i = 0; i < 8; ++i) length[i] = static_cast<unsigned char>(header_length >> (8 * i));

  AtomicFile file(path);  // engine/files.h: temporary, fsync, rename, fsync the folder
  file.write(length, sizeof(length));
  file.write(header.data(), header.size());
  for (const SafetensorsTensor& tensor : contents.tensors) file.write(tensor.bytes.data(), tensor.bytes.size());
  file.commit();
}

SafetensorsContents read_safetensors(const std::string& path) {
  require_little_endian_host(path);
  // A folder, FIFO or device is refused naming the path (engine/files.h).
  const std::string buffer = read_regular_file(path, size_t(1) << 36);
  const uint64_t file_bytes = buffer.size();
  if (file_bytes < 8)
    throw Error(path + ": " + std::to_string(file_bytes) +
                " bytes is too short for a safetensors file (needs an 8-byte header length)");
  uint64_t header_length = 0;
  for (int i = 0; i < 8; ++i) header_length |= static_cast<uint64_t>(static_cast<unsigned char>(buffer[i])) << (8 * i);
  if (header_length > kMaxHeaderBytes)
    throw Error(path + ": header length " + std::to_string(header_length) + " exceeds the limit of " +
                std::to_string(kMaxHeaderBytes) + " bytes (not a safetensors file?)");
  if (header_length > file_bytes - 8)
    throw Error(path + ": header length " + std::to_string(header_length) + " runs past the end of the " +
                std::to_string(file_bytes) + "-byte file (truncated?)");
  if (header_length < 2 || buffer[8] != '{') throw Error(path + ": the header does not start with a JSON object");
  const std::string header_text = buffer.substr(8, header_length);
  const JsonValue header = JsonParser(header_text, path).parse_document();
  if (header.kind != JsonValue::Kind::Object) throw Error(path + ": the header is not a JSON object");

  const uint64_t data_begin = 8 + header_length;
  const uint64_t data_bytes = file_bytes - data_begin;
  struct Located {
    SafetensorsTensor tensor;
    uint64_t begin, end;
  };
  std::vector<Located> located;
  SafetensorsContents contents;
  for (const auto& [name, value] : header.members) {
    if (name == kMetadataKey) {
      if (value.kind != JsonValue::Kind::Object)
        throw Error(path + ": __metadata__ must be an object of strings, got " + kind_name(value.kind));
      for (const auto& [key, entry] : value.members) {
        if (entry.kind != JsonValue::Kind::String)
          throw Error(path + ": __metadata__ value for " + quoted(key, 80) + " must be a string, got " +
                      kind_name(entry.kind));
        contents.metadata[key] = entry.text;
      }
      continue;
    }
    const std::string where = path + ": tensor " + quoted(name, 80);
    if (value.kind != JsonValue::Kind::Object)
      throw Error(where + " must be described by an object, got " + kind_name(value.kind));
    const JsonValue *dtype = nullptr, *shape = nullptr, *offsets = nullptr;
    for (const auto& [key, field] : value.members) {
      if (key == "dtype")
        dtype = &field;
      else if (key == "shape")
        shape = &field;
      else if (key == "data_offsets")
        offsets = &field;
      else
        throw Error(where + " has an unexpected field " + quoted(key));
    }
    if (!dtype || !shape || !offsets) throw Error(where + " needs dtype, shape and data_offsets");
    if (dtype->kind != JsonValue::Kind::String) throw Error(where + ": dtype must be a string");
    Located entry;
    entry.tensor.name = name;
    if (!parse_dtype(dtype->text, &entry.tensor.dtype))
      throw Error(where + " has dtype " + quoted(dtype->text) + "; only F32 and I64 are supported");
    if (shape->kind != JsonValue::Kind::Array) throw Error(where + ": shape must be an array");
    uint64_t element_count = 1;
    bool overflow = false;
    for (const JsonValue& dimension : shape->elements) {
      if (dimension.kind != JsonValue::Kind::Integer) throw Error(where + ": shape must hold non-negative integers");
      if (dimension.integer > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        throw Error(where + ": shape dimension too large");
      entry.tensor.shape.push_back(static_cast<int64_t>(dimension.integer));
      if (dimension.integer != 0 && element_count > data_bytes / dimension.integer) overflow = true;
      element_count *= dimension.integer;
    }
    if (offsets->kind != JsonValue::Kind::Array || offsets->elements.size() != 2 ||
        offsets->elements[0].kind != JsonValue::Kind::Integer || offsets->elements[1].kind != JsonValue::Kind::Integer)
      throw Error(where + ": data_offsets must be [begin, end]");
    entry.begin = offsets->elements[0].integer;
    entry.end = offsets->elements[1].integer;
    if (entry.begin > entry.end)
      throw Error(where + ": data_offsets [" + std::to_string(entry.begin) + "," + std::to_string(entry.end) +
                  "] end before they begin");
    if (entry.end > data_bytes)
      throw Error(where + ": data_offsets end at byte " + std::to_string(entry.end) + " but the data holds only " +
                  std::to_string(data_bytes) + " bytes (truncated?)");
    const uint64_t length = entry.end - entry.begin;
    const size_t element_bytes = safetensors_dtype_bytes(entry.tensor.dtype);
    if (overflow || element_count * element_bytes != length)
      throw Error(where + " of shape " + shape_string(entry.tensor.shape) + " and dtype " + dtype->text +
                  " does not match its " + std::to_string(length) + " data bytes");
    located.push_back(std::move(entry));
  }
  std::stable_sort(located.begin(), located.end(), [](const Located& a, const Located& b) {
    return a.begin < b.begin || (a.begin == b.begin && a.end < b.end);
  });
  uint64_t expected = 0;
  for (const Located& entry : located) {
    if (entry.begin != expected)
      throw Error(path + ": tensor " + quoted(entry.tensor.name, 80) + " data starts at byte " +
                  std::to_string(entry.begin) + ", expected " + std::to_string(expected) +
                  " (tensor data must be contiguous and not overlap)");
    expected = entry.end;
  }
  if (expected != data_bytes)
    throw Error(path + ": " + std::to_string(data_bytes - expected) + " trailing bytes after the last tensor's data");
  for (Located& entry : located) {
    entry.tensor.bytes.assign(buffer.begin() + static_cast<std::ptrdiff_t>(data_begin + entry.begin),
                              buffer.begin() + static_cast<std::ptrdiff_t>(data_begin + entry.end));
    contents.tensors.push_back(std::move(entry.tensor));
  }
  return contents;
}

}  // namespace pneumo
