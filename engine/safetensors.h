// Safetensors files: named host arrays <-> one file on disk. Layout: an 8-byte little-endian
// header length L, L bytes of JSON {"name": {"dtype":"F32","shape":[...],"data_offsets":[b,e]},
// ..., "__metadata__": {"key": "value"}}, then the raw little-endian data, offsets counted from
// the end of the header. Writing is atomic (temporary file in the same folder, fsync, rename);
// reading validates everything and throws pneumo::Error naming the file and the problem.
// Host memory only: device tensors are copied to the host by the caller, visibly.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace pneumo {

enum class SafetensorsDtype { F32, I64 };

const char* safetensors_dtype_name(SafetensorsDtype dtype);  // "F32", "I64"
size_t safetensors_dtype_bytes(SafetensorsDtype dtype);      // 4, 8

struct SafetensorsTensor {
  std::string name;
  SafetensorsDtype dtype = SafetensorsDtype::F32;
  Shape shape;
  std::vector<unsigned char> bytes;  // shape_count(shape) * dtype bytes, little-endian

  static SafetensorsTensor from_floats(std::string name, Shape shape, const float* values);
  static SafetensorsTensor from_int64s(std::string name, Shape shape, const int64_t* values);
  std::vector<float> floats() const;    // throws unless dtype is F32
  std::vector<int64_t> int64s() const;  // throws unless dtype is I64
};

struct SafetensorsContents {
  std::vector<SafetensorsTensor> tensors;  // in file (data offset) order after reading
  std::map<std::string, std::string> metadata;

  const SafetensorsTensor* find(const std::string& name) const;  // null when absent
};

// Writes `contents` to `path` atomically: on any failure the temporary file is removed and an
// existing file at `path` is left untouched. Tensor names must be unique, non-empty and not
// "__metadata__"; each tensor's byte count must match its shape and dtype.
void write_safetensors(const std::string& path, const SafetensorsContents& contents);

// Reads and validates a whole file: length >= 8, header length within the file, strict JSON,
// known dtypes, shape * dtype size == data length, offsets contiguous from 0 and covering the
// data exactly to the end of the file, no duplicate names, metadata values strings.
SafetensorsContents read_safetensors(const std::string& path);

}  // namespace pneumo
