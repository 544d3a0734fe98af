#include "io/gguf.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <set>

#include "common/error.h"
#include "common/threads.h"
#include "io/ggml_quants.h"

namespace quarot {

namespace {

constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" read as a little-endian uint32
constexpr uint64_t kDefaultAlignment = 32;
constexpr int kMaxDims = 4;
// Arrays of arrays are legal GGUF but never deeper than this in real files; the
// limit keeps a crafted file from exhausting the stack.
constexpr int kMaxArrayDepth = 8;

enum GgufType : uint32_t {
  kU8 = 0, kI8 = 1, kU16 = 2, kI16 = 3, kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7,
  kString = 8, kArray = 9, kU64 = 10, kI64 = 11, kF64 = 12,
};

// Smallest encoding of one value of the type, so an element count can be checked
// against the bytes left before anything is allocated.
uint64_t min_encoded_size(uint32_t type) {
  switch (type) {
    case kU8: case kI8: case kBool: return 1;
    case kU16: case kI16: return 2;
    case kU32: case kI32: case kF32: return 4;
    case kU64: case kI64: case kF64: return 8;
    case kString: return 8;
    case kArray: return 12;
    default: return 1;
  }
}

// A bounds-checked little-endian cursor over the mapped file.
class Cursor {
 public:
  Cursor(const std::string& path, const uint8_t* data, uint64_t size) : path_(path), data_(data), size_(size) {}

  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return size_ - pos_; }

  void need(uint64_t n, const char* what) const {
    if (n > remaining())
      fail("{}: truncated file: {} needs {} bytes at offset {}, only {} left", path_, what, n, pos_, remaining());
  }

  template <typename T>
  T read(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  std::string read_string(const char* what) {
    const uint64_t len = read<uint64_t>(what);
    if (len > remaining())
      fail("{}: string length {} for {} at offset {} exceeds the {} bytes left in the file", path_, len, what,
           pos_ - 8, remaining());
    std::string s(reinterpret_cast<const char*>(data_ + pos_), static_cast<size_t>(len));
    pos_ += len;
    return s;
  }

 private:
  const std::string& path_;
  const uint8_t* data_;
  uint64_t size_;
  uint64_t pos_ = 0;
};

GgufValue read_value(Cursor& c, const std::string& path, const std::string& key, uint32_t type, int depth) {
  GgufValue out;
  switch (type) {
    case kU8: out.v = uint64_t{c.read<uint8_t>("uint8 value")}; break;
    case kI8: out.v = int64_t{c.read<int8_t>("int8 value")}; break;
    case kU16: out.v = uint64_t{c.read<uint16_t>("uint16 value")}; break;
    case kI16: out.v = int64_t{c.read<int16_t>("int16 value")}; break;
    case kU32: out.v = uint64_t{c.read<uint32_t>("uint32 value")}; break;
    case kI32: out.v = int64_t{c.read<int32_t>("int32 value")}; break;
    case kU64: out.v = c.read<uint64_t>("uint64 value"); break;
    case kI64: out.v = c.read<int64_t>("int64 value"); break;
    case kF32: out.v = double{c.read<float>("float32 value")}; break;
    case kF64: out.v = c.read<double>("float64 value"); break;
    case kBool: {
      const uint8_t b = c.read<uint8_t>("bool value");
      if (b > 1) fail("{}: metadata key {} holds bool value {} (must be 0 or 1)", path, key, b);
      out.v = b != 0;
      break;
    }
    case kString: out.v = c.read_string("string value"); break;
    case kArray: {
      if (depth >= kMaxArrayDepth) fail("{}: metadata key {} nests arrays deeper than {}", path, key, kMaxArrayDepth);
      const uint32_t elem_type = c.read<uint32_t>("array element type");
      if (elem_type > kF64) fail("{}: metadata key {} has arrays of unknown value type {}", path, key, elem_type);
      const uint64_t count = c.read<uint64_t>("array length");
      if (count > c.remaining() / min_encoded_size(elem_type))
        fail("{}: metadata key {} claims {} array elements, more than the file can hold", path, key, count);
      GgufArray arr;
      arr.reserve(static_cast<size_t>(count));
      for (uint64_t i = 0; i < count; ++i) arr.push_back(read_value(c, path, key, elem_type, depth + 1));
      out.v = std::move(arr);
      break;
    }
    default: fail("{}: metadata key {} has unknown value type {}", path, key, type);
  }
  return out;
}

const char* held_type(const GgufValue& v) {
  switch (v.v.index()) {
    case 0: return "unsigned integer";
    case 1: return "signed integer";
    case 2: return "float";
    case 3: return "bool";
    case 4: return "string";
    default: return "array";
  }
}

bool checked_mul(uint64_t a, uint64_t b, uint64_t* out) { return !__builtin_mul_overflow(a, b, out); }

}  // namespace

GgufFile::GgufFile(const std::string& path) : file_(path) {
  const std::string& p = file_.path();
  Cursor c(p, file_.data(), file_.size());
  if (file_.size() < 4) fail("{}: not a GGUF file (only {} bytes)", p, file_.size());
  const uint32_t magic = c.read<uint32_t>("magic");
  if (magic != kGgufMagic) fail("{}: not a GGUF file (bad magic 0x{:08x}, expected \"GGUF\")", p, magic);
  version_ = c.read<uint32_t>("version");
  if (version_ != 2 && version_ != 3) {
    if (__builtin_bswap32(version_) == 2 || __builtin_bswap32(version_) == 3)
      fail("{}: big-endian GGUF files are not supported", p);
    fail("{}: unsupported GGUF version {} (supported: 2, 3)", p, version_);
  }
  const uint64_t n_tensors = c.read<uint64_t>("tensor count");
  const uint64_t n_kv = c.read<uint64_t>("metadata count");
  // Every key/value takes at least 13 bytes and every tensor info at least 24.
  if (n_kv > c.remaining() / 13) fail("{}: metadata count {} exceeds what the file can hold", p, n_kv);
  if (n_tensors > c.remaining() / 24) fail("{}: tensor count {} exceeds what the file can hold", p, n_tensors);

  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string key = c.read_string("metadata key");
    const uint32_t type = c.read<uint32_t>("metadata value type");
    GgufValue value = read_value(c, p, key, type, 0);
    if (metadata_.count(key)) fail("{}: duplicated metadata key {}", p, key);
    metadata_.emplace(std::move(key), std::move(value));
  }

  uint64_t alignment = kDefaultAlignment;
  if (has("general.alignment")) {
    const int64_t a = get_int("general.alignment");
    if (a <= 0 || (a & (a - 1)) != 0 || a > (1 << 30))
      fail("{}: general.alignment {} is not a positive power of two", p, a);
    alignment = static_cast<uint64_t>(a);
  }

  std::set<std::string> names;
  tensors_.reserve(static_cast<size_t>(n_tensors));
  for (uint64_t i = 0; i < n_tensors; ++i) {
    TensorInfo t;
    t.name = c.read_string("tensor name");
    if (!names.insert(t.name).second) fail("{}: duplicated tensor name {}", p, t.name);
    const uint32_t n_dims = c.read<uint32_t>("tensor dimension count");
    if (n_dims == 0 || n_dims > kMaxDims)
      fail("{}: tensor {} has {} dimensions (supported: 1 to {})", p, t.name, n_dims, kMaxDims);
    std::vector<int64_t> ne(n_dims);
    uint64_t numel = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t v = c.read<uint64_t>("tensor dimension");
      if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) || !checked_mul(numel, v, &numel) ||
          numel > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        fail("{}: tensor {} element count overflows", p, t.name);
      ne[d] = static_cast<int64_t>(v);
    }
    const uint32_t ggml_type = c.read<uint32_t>("tensor type");
    const auto dtype = dtype_from_ggml_type(ggml_type);
    if (!dtype) fail("{}: tensor {} has unknown or unsupported ggml type {}", p, t.name, ggml_type);
    t.dtype = *dtype;
    const uint64_t block = static_cast<uint64_t>(dtype_block_elems(t.dtype));
    if (ne[0] % block != 0)
      fail("{}: tensor {} row size {} is not a multiple of the {} block size {}", p, t.name, ne[0],
           dtype_name(t.dtype), block);
    // A row's byte count is checked on its own: with another dimension 0 the total
    // is 0 however large the row is, and reading would still step by rows.
    uint64_t row_bytes = 0;
    if (!checked_mul(numel / block, static_cast<uint64_t>(dtype_block_bytes(t.dtype)), &t.nbytes) ||
        !checked_mul(static_cast<uint64_t>(ne[0]) / block, static_cast<uint64_t>(dtype_block_bytes(t.dtype)),
                     &row_bytes) ||
        row_bytes > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      fail("{}: tensor {} byte size overflows", p, t.name);
    t.shape.assign(ne.rbegin(), ne.rend());  // GGUF lists dims innermost first
    t.offset = c.read<uint64_t>("tensor data offset");
    if (t.offset % alignment != 0)
      fail("{}: tensor {} data offset {} is not aligned to {}", p, t.name, t.offset, alignment);
    tensors_.push_back(std::move(t));
  }

  data_start_ = (c.pos() + alignment - 1) / alignment * alignment;
  const uint64_t file_size = file_.size();
  if (!tensors_.empty() && data_start_ > file_size)
    fail("{}: truncated file: tensor data would start at {} but the file has {} bytes", p, data_start_, file_size);
  const uint64_t data_size = tensors_.empty() ? 0 : file_size - data_start_;
  for (TensorInfo& t : tensors_) {
    if (t.offset > data_size || t.nbytes > data_size - t.offset)
      fail("{}: tensor {} data ({} bytes at offset {}) extends past end of file", p, t.name, t.nbytes, t.offset);
  }
  check_tensor_data_disjoint(tensors_, p);
  // TensorInfo::offset is documented as the offset within the file.
  for (TensorInfo& t : tensors_) t.offset += data_start_;
}

const uint8_t* GgufFile::tensor_data(const TensorInfo& t) const { return file_.data() + t.offset; }

Tensor GgufFile::read(const std::string& name) const {
  const TensorInfo* info = find(name);
  if (info == nullptr) fail("{}: tensor {} not found", path(), name);
  Tensor out(info->shape);
  if (out.numel() == 0) return out;
  const int64_t row = info->shape.back();
  const int64_t rows = row == 0 ? 0 : out.numel() / row;
  const int64_t row_bytes = row / dtype_block_elems(info->dtype) * dtype_block_bytes(info->dtype);
  const uint8_t* src = tensor_data(*info);
  float* dst = out.data.data();
  const DType type = info->dtype;
  // Rows are independent; large tensors are split over threads.
#pragma omp parallel for schedule(static) num_threads(num_threads()) if (out.numel() > (1 << 16))
  for (int64_t r = 0; r < rows; ++r) dequantize_row(type, src + r * row_bytes, dst + r * row, row);
  return out;
}

std::string GgufFile::get_string(const std::string& key) const {
  auto it = metadata_.find(key);
  if (it == metadata_.end()) fail("{}: metadata key {} missing", path(), key);
  if (const auto* s = std::get_if<std::string>(&it->second.v)) return *s;
  fail("{}: metadata key {} has type {}, expected string", path(), key, held_type(it->second));
}

int64_t GgufFile::get_int(const std::string& key) const {
  auto it = metadata_.find(key);
  if (it == metadata_.end()) fail("{}: metadata key {} missing", path(), key);
  if (const auto* u = std::get_if<uint64_t>(&it->second.v)) {
    if (*u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      fail("{}: metadata key {} value {} is too large", path(), key, *u);
    return static_cast<int64_t>(*u);
  }
  if (const auto* i = std::get_if<int64_t>(&it->second.v)) return *i;
  fail("{}: metadata key {} has type {}, expected integer", path(), key, held_type(it->second));
}

double GgufFile::get_float(const std::string& key) const {
  auto it = metadata_.find(key);
  if (it == metadata_.end()) fail("{}: metadata key {} missing", path(), key);
  if (const auto* d = std::get_if<double>(&it->second.v)) return *d;
  if (const auto* u = std::get_if<uint64_t>(&it->second.v)) return static_cast<double>(*u);
  if (const auto* i = std::get_if<int64_t>(&it->second.v)) return static_cast<double>(*i);
  fail("{}: metadata key {} has type {}, expected float", path(), key, held_type(it->second));
}

bool GgufFile::get_bool(const std::string& key) const {
  auto it = metadata_.find(key);
  if (it == metadata_.end()) fail("{}: metadata key {} missing", path(), key);
  if (const auto* b = std::get_if<bool>(&it->second.v)) return *b;
  fail("{}: metadata key {} has type {}, expected bool", path(), key, held_type(it->second));
}

namespace {
const GgufArray& get_array(const std::map<std::string, GgufValue>& md, const std::string& path,
                           const std::string& key) {
  auto it = md.find(key);
  if (it == md.end()) fail("{}: metadata key {} missing", path, key);
  if (const auto* a = std::get_if<GgufArray>(&it->second.v)) return *a;
  fail("{}: metadata key {} has type {}, expected array", path, key, held_type(it->second));
}
}  // namespace

std::vector<std::string> GgufFile::get_string_array(const std::string& key) const {
  const GgufArray& a = get_array(metadata_, path(), key);
  std::vector<std::string> out;
  out.reserve(a.size());
  for (const GgufValue& v : a) {
    const auto* s = std::get_if<std::string>(&v.v);
    if (s == nullptr) fail("{}: metadata key {} holds {} elements, expected strings", path(), key, held_type(v));
    out.push_back(*s);
  }
  return out;
}

std::vector<double> GgufFile::get_float_array(const std::string& key) const {
  const GgufArray& a = get_array(metadata_, path(), key);
  std::vector<double> out;
  out.reserve(a.size());
  for (const GgufValue& v : a) {
    if (const auto* d = std::get_if<double>(&v.v)) out.push_back(*d);
    else if (const auto* u = std::get_if<uint64_t>(&v.v)) out.push_back(static_cast<double>(*u));
    else if (const auto* i = std::get_if<int64_t>(&v.v)) out.push_back(static_cast<double>(*i));
    else fail("{}: metadata key {} holds {} elements, expected numbers", path(), key, held_type(v));
  }
  return out;
}

std::vector<int64_t> GgufFile::get_int_array(const std::string& key) const {
  const GgufArray& a = get_array(metadata_, path(), key);
  std::vector<int64_t> out;
  out.reserve(a.size());
  for (const GgufValue& v : a) {
    if (const auto* u = std::get_if<uint64_t>(&v.v)) {
      if (*u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        fail("{}: metadata key {} holds a value too large for int64", path(), key);
      out.push_back(static_cast<int64_t>(*u));
    } else if (const auto* i = std::get_if<int64_t>(&v.v)) {
      out.push_back(*i);
    } else {
      fail("{}: metadata key {} holds {} elements, expected integers", path(), key, held_type(v));
    }
  }
  return out;
}

std::string GgufFile::get_string_or(const std::string& key, const std::string& def) const {
  return has(key) ? get_string(key) : def;
}
int64_t GgufFile::get_int_or(const std::string& key, int64_t def) const { return has(key) ? get_int(key) : def; }
double GgufFile::get_float_or(const std::string& key, double def) const { return has(key) ? get_float(key) : def; }
bool GgufFile::get_bool_or(const std::string& key, bool def) const { return has(key) ? get_bool(key) : def; }

}  // namespace quarot
