#include "quant/quantized_model.h"

#include <cmath>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <set>

#include <fmt/ranges.h>

#include "common/error.h"
#include "common/half.h"
#include "common/json_number.h"
#include "io/safetensors.h"
#include "model/linear_slots.h"

namespace quarot {

namespace {

using json = nlohmann::json;

constexpr const char* kFormatName = "quarot-quantized";
constexpr const char* kMetadataKey = "quarot";
constexpr const char* kTokenizerKey = "tokenizer.json";
constexpr const char* kWriterVersion = "0.1.0";

// Every tensor of a ModelWeights, by file name, for reading and writing alike.
template <typename Weights, typename Visit>
void for_each_tensor(Weights& w, Visit&& visit) {
  visit("tok_embeddings", w.tok_embeddings);
  for (size_t i = 0; i < w.layers.size(); ++i) {
    auto& l = w.layers[i];
    const std::string p = "layers." + std::to_string(i) + ".";
    visit(p + "attn_norm", l.attn_norm);
    for (const LayerLinear& lin : kLayerLinears) visit(p + lin.field, l.*lin.weight);
    for (const LayerLinear& lin : kLayerLinears)
      if (lin.bias != nullptr) visit(p + "b" + std::string(lin.field).substr(1), l.*lin.bias);
    visit(p + "ffn_norm", l.ffn_norm);
  }
  visit("output_norm", w.output_norm);
  visit("lm_head", w.lm_head);
}

// The tensor of `w` stored under `name` (one of encodable_weight_names()).
template <typename Weights>
auto& tensor_by_name(Weights& w, const std::string& name) {
  decltype(&w.tok_embeddings) found = nullptr;
  for_each_tensor(w, [&](const std::string& n, auto& t) {
    if (n == name) found = &t;
  });
  if (found == nullptr) fail("no tensor named {}", name);
  return *found;
}

// Matrices that may be stored encoded: every linear, lm_head and the embedding table.
std::vector<std::string> encodable_weight_names(const LlamaConfig& c) {
  std::vector<std::string> names = linear_weight_names(c);
  names.push_back("tok_embeddings");
  return names;
}

std::vector<int64_t> encoded_shape(const LlamaConfig& c, const std::string& name) {
  if (name == "lm_head" || name == "tok_embeddings") return {c.vocab_size, c.hidden};
  const size_t dot = name.rfind('.');
  const std::string field = dot == std::string::npos ? name : name.substr(dot + 1);
  for (const LayerLinear& l : kLayerLinears)
    if (field == l.field) return {l.rows(c), l.cols(c)};
  fail("no linear named {}", name);
}

json rotation_to_json(const OnlineRotation& r) {
  return {{"k", r.k}, {"p", r.p}, {"inner", r.inner}, {"m", r.m}};
}

OnlineRotation rotation_from_json(const json& j, const std::string& where) {
  OnlineRotation r;
  r.k = json_number<int64_t>(j.at("k"), where + ".k");
  r.p = json_number<int64_t>(j.at("p"), where + ".p");
  r.inner = json_number<int64_t>(j.at("inner"), where + ".inner");
  r.m = json_numbers<float>(j.at("m"), where + ".m");
  return r;
}

json act_to_json(const ActQuantSpec& a) {
  return {{"bits", a.bits}, {"clip_ratio", a.clip_ratio}, {"group", a.group}, {"symmetric", a.symmetric}};
}

ActQuantSpec act_from_json(const json& j, const std::string& where) {
  ActQuantSpec a;
  a.bits = json_number<int>(j.at("bits"), where + ".bits");
  a.clip_ratio = json_number<float>(j.at("clip_ratio"), where + ".clip_ratio");
  a.group = json_number<int64_t>(j.at("group"), where + ".group");
  a.symmetric = j.at("symmetric").get<bool>();
  return a;
}

json kv_to_json(const KvQuantSpec& k) {
  return {{"bits", k.bits}, {"clip_ratio", k.clip_ratio}, {"group", k.group}, {"symmetric", k.symmetric}};
}

KvQuantSpec kv_from_json(const json& j, const std::string& where) {
  KvQuantSpec k;
  k.bits = json_number<int>(j.at("bits"), where + ".bits");
  k.clip_ratio = json_number<float>(j.at("clip_ratio"), where + ".clip_ratio");
  k.group = json_number<int64_t>(j.at("group"), where + ".group");
  k.symmetric = j.at("symmetric").get<bool>();
  return k;
}

std::string utc_timestamp() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

SafetensorsEntry fp_entry(const std::string& name, const Tensor& t, bool fp16) {
  if (!fp16) return safetensors_entry_f32(name, t);
  SafetensorsEntry e;
  e.name = name;
  e.dtype = DType::kF16;
  e.shape = t.shape;
  e.data.resize(t.data.size() * 2);
  for (size_t i = 0; i < t.data.size(); ++i) {
    const uint16_t h = fp32_to_fp16(t.data[i]);
    std::memcpy(e.data.data() + 2 * i, &h, 2);
  }
  return e;
}

SafetensorsEntry float_vector_entry(const std::string& name, const std::vector<float>& v, int64_t rows,
                                    int64_t cols) {
  SafetensorsEntry e;
  e.name = name;
  e.dtype = DType::kF32;
  e.shape = {rows, cols};
  e.data.resize(v.size() * sizeof(float));
  if (!v.empty()) std::memcpy(e.data.data(), v.data(), e.data.size());
  return e;
}

// Codes packed row by row, so a row always starts on a byte boundary.
std::vector<uint8_t> pack_rows(const QuantizedMatrix& q, CodePacking packing) {
  const int64_t row_bytes = packed_row_size(q.cols, q.bits, packing);
  std::vector<uint8_t> out;
  out.reserve(static_cast<size_t>(q.rows * row_bytes));
  for (int64_t r = 0; r < q.rows; ++r) {
    const std::vector<uint8_t> row(q.codes.begin() + r * q.cols, q.codes.begin() + (r + 1) * q.cols);
    const std::vector<uint8_t> packed =
        packing == CodePacking::kBits ? pack_codes_dense(row.data(), q.cols, q.bits) : pack_codes(row, q.bits);
    out.insert(out.end(), packed.begin(), packed.end());
  }
  return out;
}

// The "packing" of a stored integer linear; files before version 3 may omit it.
CodePacking read_packing(const json& meta, int bits, const std::string& what) {
  if (!meta.contains("packing")) return legacy_packing(bits);
  const json& p = meta.at("packing");
  for (CodePacking c : kCodePackings)
    if (p.is_string() && p.get<std::string>() == code_packing_name(c)) {
      if (c != legacy_packing(bits) && c != file_packing(bits))
        fail("{}: packing '{}' does not hold {}-bit codes", what, code_packing_name(c), bits);
      return c;
    }
  std::vector<std::string> known;
  for (CodePacking c : kCodePackings) known.push_back(fmt::format("'{}'", code_packing_name(c)));
  fail("{}: unknown packing {} (this build reads {})", what, p.dump(), fmt::join(known, ", "));
}

// A view of an F32 tensor in the mapped file (a copy only when the file leaves it
// unaligned; quarot's writer aligns every tensor).
const float* f32_view(const SafetensorsFile& file, const std::shared_ptr<const SafetensorsFile>& keep,
                      const std::string& name, const std::vector<int64_t>& shape,
                      std::vector<std::shared_ptr<const void>>& owners) {
  const TensorInfo* info = file.find(name);
  if (info == nullptr) fail("{}: tensor {} is missing", file.path(), name);
  if (info->dtype != DType::kF32) fail("{}: tensor {} has dtype {}, expected F32", file.path(), name, dtype_name(info->dtype));
  if (info->shape != shape)
    fail("{}: tensor {} has shape [{}], expected [{}]", file.path(), name, fmt::join(info->shape, ", "),
         fmt::join(shape, ", "));
  const uint8_t* p = file.tensor_data(*info);
  if (reinterpret_cast<uintptr_t>(p) % alignof(float) == 0) return reinterpret_cast<const float*>(p);
  auto copy = std::make_shared<std::vector<float>>(file.read(name).data);
  owners.push_back(copy);
  return copy->data();
}

struct EncodingOwners {
  std::shared_ptr<const SafetensorsFile> file;
  std::vector<std::shared_ptr<const void>> extra;
};

// A view of a 1-D tensor of T in the mapped file (copied when the file leaves it
// unaligned). `dtypes` lists the accepted dtypes, the first being the one written.
template <typename T>
const T* typed_view(const SafetensorsFile& file, const std::string& name, std::initializer_list<DType> dtypes,
                    int64_t count, EncodingOwners& owners) {
  const TensorInfo* info = file.find(name);
  if (info == nullptr) fail("{}: tensor {} is missing", file.path(), name);
  bool ok = false;
  for (DType d : dtypes) ok = ok || info->dtype == d;
  if (!ok)
    fail("{}: tensor {} has dtype {}, expected {}", file.path(), name, dtype_name(info->dtype),
         dtype_name(*dtypes.begin()));
  if (info->shape != std::vector<int64_t>{count} || static_cast<int64_t>(info->nbytes) != count * int64_t{sizeof(T)})
    fail("{}: tensor {} has shape [{}] ({} bytes), expected [{}]", file.path(), name, fmt::join(info->shape, ", "),
         info->nbytes, count);
  const uint8_t* p = file.tensor_data(*info);
  if (reinterpret_cast<uintptr_t>(p) % alignof(T) == 0) return reinterpret_cast<const T*>(p);
  auto copy = std::make_shared<std::vector<T>>(static_cast<size_t>(count));
  if (count > 0) std::memcpy(copy->data(), p, count * sizeof(T));
  owners.extra.push_back(copy);
  return copy->data();
}

template <typename T>
SafetensorsEntry raw_entry(const std::string& name, DType dtype, const T* data, int64_t count) {
  SafetensorsEntry e;
  e.name = name;
  e.dtype = dtype;
  e.shape = {count};
  e.data.resize(static_cast<size_t>(count) * sizeof(T));
  if (count > 0) std::memcpy(e.data.data(), data, e.data.size());
  return e;
}

// A codebook (CLAQ) linear as stored: its tensors and its metadata entry.
json write_codebook_entries(const std::string& name, const WeightEncoding& e, std::vector<SafetensorsEntry>& entries) {
  const CodebookLayout l(e.rows, e.cols, e.col_bits, name);
  entries.push_back(raw_entry(name + ".cb_bits", DType::kU8, e.col_bits, e.cols));
  entries.push_back(raw_entry(name + ".cb_centroids", DType::kF16, e.centroids, l.centroid_count));
  entries.push_back(raw_entry(name + ".cb_indices", DType::kU8, static_cast<const uint8_t*>(e.data), l.index_bytes));
  if (e.n_outliers > 0) {
    entries.push_back(raw_entry(name + ".cb_outlier_row_ptr", DType::kU32, e.outlier_row_ptr, e.rows + 1));
    entries.push_back(raw_entry(name + ".cb_outlier_cols", DType::kU16, e.outlier_cols, e.n_outliers));
    entries.push_back(raw_entry(name + ".cb_outlier_values", DType::kF16, e.outlier_values, e.n_outliers));
  }
  return {{"kind", "codebook"},
          {"shape", {e.rows, e.cols}},
          {"bits", e.bits},
          {"stripe_rows", kCodebookStripeRows},
          {"outliers", e.n_outliers},
          {"effective_bits", e.effective_bits()}};
}

// The codebook encoding of `name` as stored, viewed in place.
WeightEncoding read_codebook_encoding(const std::shared_ptr<const SafetensorsFile>& file, const std::string& name,
                                      const json& meta, const std::vector<int64_t>& shape) {
  const std::string& path = file->path();
  const auto stored_shape = json_numbers<int64_t>(meta.at("shape"), path + ": tensor " + name + " shape");
  if (stored_shape != shape)
    fail("{}: tensor {} has shape [{}], expected [{}]", path, name, fmt::join(stored_shape, ", "), fmt::join(shape, ", "));
  const int64_t stripe = json_number<int64_t>(meta.at("stripe_rows"), path + ": tensor " + name + " stripe_rows");
  if (stripe != kCodebookStripeRows)
    fail("{}: tensor {} stores indices in stripes of {} rows; this build reads {}", path, name, stripe,
         kCodebookStripeRows);
  const int64_t n_outliers = json_number<int64_t>(meta.at("outliers"), path + ": tensor " + name + " outliers");
  const int64_t rows = shape[0], cols = shape[1];
  if (cols > kCodebookMaxCols) fail("{}: tensor {}: {} columns exceed the codebook limit", path, name, cols);
  if (n_outliers < 0 || n_outliers > rows * cols)
    fail("{}: tensor {}: outlier count {} is out of range", path, name, n_outliers);
  auto owners = std::make_shared<EncodingOwners>();
  owners->file = file;
  const uint8_t* bits = typed_view<uint8_t>(*file, name + ".cb_bits", {DType::kU8}, cols, *owners);
  const CodebookLayout l(rows, cols, bits, path + ": " + name);
  const uint16_t* centroids =
      typed_view<uint16_t>(*file, name + ".cb_centroids", {DType::kF16}, l.centroid_count, *owners);
  const uint8_t* indices = typed_view<uint8_t>(*file, name + ".cb_indices", {DType::kU8}, l.index_bytes, *owners);
  const uint32_t* row_ptr = nullptr;
  const uint16_t *ocols = nullptr, *ovals = nullptr;
  if (n_outliers > 0) {
    row_ptr = typed_view<uint32_t>(*file, name + ".cb_outlier_row_ptr", {DType::kU32}, rows + 1, *owners);
    ocols = typed_view<uint16_t>(*file, name + ".cb_outlier_cols", {DType::kU16}, n_outliers, *owners);
    ovals = typed_view<uint16_t>(*file, name + ".cb_outlier_values", {DType::kF16}, n_outliers, *owners);
  }
  WeightEncoding e =
      codebook_weight_view(rows, cols, bits, centroids, indices, n_outliers, row_ptr, ocols, ovals, owners);
  const int stored_bits = json_number<int>(meta.at("bits"), path + ": tensor " + name + " bits");
  if (stored_bits != e.bits)
    fail("{}: tensor {}: metadata says {} bits, its widest column has {}", path, name, stored_bits, e.bits);
  e.validate(path + ": " + name);
  return e;
}

// The integer encoding of `name` as stored, viewed in place (no unpacking).
WeightEncoding read_int_encoding(const std::shared_ptr<const SafetensorsFile>& file, const std::string& name,
                                 const json& meta, const std::vector<int64_t>& shape) {
  const std::string& path = file->path();
  const std::string kind = meta.value("kind", std::string("int"));
  if (kind == "codebook") {
    // The embedding table is read row by row on lookup, which the striped layout does not offer.
    if (name == "tok_embeddings") fail("{}: tensor tok_embeddings cannot use encoding 'codebook'", path);
    return read_codebook_encoding(file, name, meta, shape);
  }
  if (kind != "int")
    fail("{}: tensor {} uses encoding '{}', which this build cannot read (it reads 'int', 'codebook')", path, name,
         kind);
  WeightEncoding e;
  e.kind = WeightKind::kIntGrid;
  e.bits = json_number<int>(meta.at("bits"), path + ": tensor " + name + " bits");
  e.group = json_number<int64_t>(meta.at("group"), path + ": tensor " + name + " group");
  e.symmetric = meta.at("symmetric").get<bool>();
  const auto stored_shape = json_numbers<int64_t>(meta.at("shape"), path + ": tensor " + name + " shape");
  if (stored_shape != shape)
    fail("{}: tensor {} has shape [{}], expected [{}]", path, name, fmt::join(stored_shape, ", "), fmt::join(shape, ", "));
  e.rows = shape[0];
  e.cols = shape[1];
  if (e.bits < 2 || e.bits > 8) fail("{}: tensor {}: {} bits is out of range (2..8)", path, name, e.bits);
  if (e.group < 0 || (e.group > 0 && e.cols % e.group != 0))
    fail("{}: tensor {}: group {} does not divide {} columns", path, name, e.group, e.cols);

  const std::string qname = name + ".qweight";
  const TensorInfo* info = file->find(qname);
  if (info == nullptr) fail("{}: tensor {} is missing", path, qname);
  if (info->dtype != DType::kU8 && info->dtype != DType::kI8)
    fail("{}: tensor {} has dtype {}, expected U8", path, qname, dtype_name(info->dtype));
  const CodePacking packing = read_packing(meta, e.bits, path + ": tensor " + name);
  const int64_t row_bytes = packed_row_size(e.cols, e.bits, packing);
  const std::vector<int64_t> want{e.rows, row_bytes};
  if (info->shape != want || static_cast<int64_t>(info->nbytes) != e.rows * row_bytes)
    fail("{}: tensor {} holds {} bytes in shape [{}], expected [{}, {}] for {}-bit codes of a {}x{} matrix", path,
         qname, info->nbytes, fmt::join(info->shape, ", "), e.rows, row_bytes, e.bits, e.rows, e.cols);
  auto owners = std::make_shared<EncodingOwners>();
  owners->file = file;
  if (packing == legacy_packing(e.bits)) {
    e.data = file->tensor_data(*info);
    e.mapped = std::shared_ptr<const MappedFile>(file, &file->mapping());
  } else {
    // Dense 2/3-bit rows widen once to the nibbles the kernels read (memory as for int4).
    const int64_t memory_row = packed_row_bytes(e.cols, e.bits);
    auto rows = std::make_shared<std::vector<uint8_t>>(static_cast<size_t>(e.rows * memory_row));
    const uint8_t* src = file->tensor_data(*info);
    for (int64_t r = 0; r < e.rows; ++r) expand_dense_row(src + r * row_bytes, e.cols, e.bits, rows->data() + r * memory_row);
    e.data = rows->data();
    owners->extra.push_back(rows);
  }
  e.scales = f32_view(*file, file, name + ".scales", {e.rows, e.n_groups()}, owners->extra);
  if (!e.symmetric) e.zeros = f32_view(*file, file, name + ".zeros", {e.rows, e.n_groups()}, owners->extra);
  e.owner = owners;
  e.validate(path + ": " + name);
  return e;
}

// A 16-bit float matrix viewed in place; F32 and BF16 are converted into an owned copy.
WeightEncoding read_float_encoding(const std::shared_ptr<const SafetensorsFile>& file, const std::string& name,
                                   const std::vector<int64_t>& shape) {
  const TensorInfo* info = file->find(name);
  if (info == nullptr) fail("{}: tensor {} is missing", file->path(), name);
  if (info->shape != shape)
    fail("{}: tensor {} has shape [{}], expected [{}]", file->path(), name, fmt::join(info->shape, ", "),
         fmt::join(shape, ", "));
  const uint8_t* p = file->tensor_data(*info);
  WeightEncoding e;
  if (info->dtype == DType::kF16 && reinterpret_cast<uintptr_t>(p) % 2 == 0) {
    e = f16_weight(reinterpret_cast<const uint16_t*>(p), shape[0], shape[1], file);
    e.mapped = std::shared_ptr<const MappedFile>(file, &file->mapping());
  } else {
    auto copy = std::make_shared<std::vector<float>>(file->read(name).data);
    e = f32_weight(copy->data(), shape[0], shape[1], copy);
  }
  e.validate(file->path() + ": " + name);
  return e;
}

}  // namespace

std::vector<std::string> linear_weight_names(const LlamaConfig& c) {
  std::vector<std::string> names;
  for (int64_t i = 0; i < c.n_layers; ++i)
    for (const LayerLinear& l : kLayerLinears) names.push_back(layer_linear_name(i, l));
  names.push_back("lm_head");
  return names;
}

json config_to_json(const LlamaConfig& c) {
  const char* rope_type = c.rope_scaling.type == RopeScaling::Type::kLlama3   ? "llama3"
                          : c.rope_scaling.type == RopeScaling::Type::kLinear ? "linear"
                                                                              : "none";
  return {{"arch", c.arch},
          {"name", c.name},
          {"vocab_size", c.vocab_size},
          {"hidden", c.hidden},
          {"intermediate", c.intermediate},
          {"n_layers", c.n_layers},
          {"n_heads", c.n_heads},
          {"n_kv_heads", c.n_kv_heads},
          {"head_dim", c.head_dim},
          {"max_context", c.max_context},
          {"rms_eps", c.rms_eps},
          {"rope_theta", c.rope_theta},
          {"rope_scaling",
           {{"type", rope_type},
            {"factor", c.rope_scaling.factor},
            {"low_freq_factor", c.rope_scaling.low_freq_factor},
            {"high_freq_factor", c.rope_scaling.high_freq_factor},
            {"original_max_position", c.rope_scaling.original_max_position}}},
          {"tied_embeddings", c.tied_embeddings},
          {"qkv_bias", c.qkv_bias},
          {"bos_id", c.bos_id},
          {"eos_id", c.eos_id},
          {"add_bos", c.add_bos}};
}

LlamaConfig config_from_json(const json& j, const std::string& source) {
  LlamaConfig c;
  try {
    c.arch = j.at("arch").get<std::string>();
    c.name = j.at("name").get<std::string>();
    c.vocab_size = json_number<int64_t>(j.at("vocab_size"), source + ": config vocab_size");
    c.hidden = json_number<int64_t>(j.at("hidden"), source + ": config hidden");
    c.intermediate = json_number<int64_t>(j.at("intermediate"), source + ": config intermediate");
    c.n_layers = json_number<int64_t>(j.at("n_layers"), source + ": config n_layers");
    c.n_heads = json_number<int64_t>(j.at("n_heads"), source + ": config n_heads");
    c.n_kv_heads = json_number<int64_t>(j.at("n_kv_heads"), source + ": config n_kv_heads");
    c.head_dim = json_number<int64_t>(j.at("head_dim"), source + ": config head_dim");
    c.max_context = json_number<int64_t>(j.at("max_context"), source + ": config max_context");
    c.rms_eps = json_number<float>(j.at("rms_eps"), source + ": config rms_eps");
    c.rope_theta = json_number<float>(j.at("rope_theta"), source + ": config rope_theta");
    const json& rs = j.at("rope_scaling");
    const std::string type = rs.at("type").get<std::string>();
    if (type == "llama3")
      c.rope_scaling.type = RopeScaling::Type::kLlama3;
    else if (type == "linear")
      c.rope_scaling.type = RopeScaling::Type::kLinear;
    else if (type == "none")
      c.rope_scaling.type = RopeScaling::Type::kNone;
    else
      fail("{}: unknown rope scaling type '{}'", source, type);
    c.rope_scaling.factor = json_number<float>(rs.at("factor"), source + ": config factor");
    c.rope_scaling.low_freq_factor = json_number<float>(rs.at("low_freq_factor"), source + ": config low_freq_factor");
    c.rope_scaling.high_freq_factor = json_number<float>(rs.at("high_freq_factor"), source + ": config high_freq_factor");
    c.rope_scaling.original_max_position = json_number<int64_t>(rs.at("original_max_position"), source + ": config original_max_position");
    c.tied_embeddings = j.at("tied_embeddings").get<bool>();
    c.qkv_bias = j.at("qkv_bias").get<bool>();
    c.bos_id = json_number<int32_t>(j.at("bos_id"), source + ": config bos_id");
    c.eos_id = json_number<int32_t>(j.at("eos_id"), source + ": config eos_id");
    c.add_bos = j.at("add_bos").get<bool>();
  } catch (const json::exception& e) {
    fail("{}: malformed model config in metadata: {}", source, e.what());
  }
  c.validate(source);
  return c;
}

json recipe_to_json(const RuntimeRecipe& r) {
  json j = {{"qk_rotation", rotation_to_json(r.qk_rotation)},
          {"o_proj_input", rotation_to_json(r.o_proj_input)},
          {"down_proj_input", rotation_to_json(r.down_proj_input)},
          {"act", act_to_json(r.act)},
          {"lm_head_act", act_to_json(r.lm_head_act)},
          {"k_cache", kv_to_json(r.k_cache)},
          {"v_cache", kv_to_json(r.v_cache)},
          {"intact_kv", r.intact_kv},
          {"norms_folded", r.norms_folded}};
  // Written only when used, so files without mixed precision stay as version 1 wrote them.
  if (!r.act_overrides.empty()) {
    json o = json::object();
    for (const auto& [slot, spec] : r.act_overrides) o[linear_slot_name(slot)] = act_to_json(spec);
    j["act_overrides"] = o;
  }
  return j;
}

RuntimeRecipe recipe_from_json(const json& j, const std::string& source) {
  RuntimeRecipe r;
  try {
    r.qk_rotation = rotation_from_json(j.at("qk_rotation"), source + ": recipe qk_rotation");
    r.o_proj_input = rotation_from_json(j.at("o_proj_input"), source + ": recipe o_proj_input");
    r.down_proj_input = rotation_from_json(j.at("down_proj_input"), source + ": recipe down_proj_input");
    r.act = act_from_json(j.at("act"), source + ": recipe act");
    r.lm_head_act = act_from_json(j.at("lm_head_act"), source + ": recipe lm_head_act");
    if (j.contains("act_overrides"))
      for (const auto& [name, spec] : j.at("act_overrides").items()) {
        const std::optional<LinearSlot> slot = parse_layer_slot(name);
        if (!slot) fail("{}: runtime recipe overrides the activations of unknown slot '{}'", source, name);
        r.act_overrides[*slot] = act_from_json(spec, source + ": recipe act_overrides." + name);
      }
    r.k_cache = kv_from_json(j.at("k_cache"), source + ": recipe k_cache");
    r.v_cache = kv_from_json(j.at("v_cache"), source + ": recipe v_cache");
    r.intact_kv = j.at("intact_kv").get<bool>();
    r.norms_folded = j.at("norms_folded").get<bool>();
  } catch (const json::exception& e) {
    fail("{}: malformed runtime recipe in metadata: {}", source, e.what());
  }
  for (const auto* rot : {&r.qk_rotation, &r.o_proj_input, &r.down_proj_input}) {
    if (rot->k <= 0 || rot->p <= 0 || rot->inner <= 0 || (rot->p & (rot->p - 1)) != 0)
      fail("{}: runtime recipe has an invalid online rotation (k {}, p {}, inner {})", source, rot->k, rot->p, rot->inner);
    const size_t want = rot->k == 1 ? 0 : static_cast<size_t>(rot->k * rot->k);
    if (rot->m.size() != want && !(rot->k == 1 && rot->m.size() == 1))
      fail("{}: online rotation with k {} holds {} matrix values, expected {}", source, rot->k, rot->m.size(), want);
    for (float v : rot->m)
      if (!std::isfinite(v)) fail("{}: online rotation matrix holds a non-finite value", source);
  }
  auto check_spec = [&](int bits, float clip, int64_t group, const char* what) {
    if (bits < 0 || bits > 16) fail("{}: {} quantizer has {} bits", source, what, bits);
    if (!(clip > 0.0f && clip <= 1.0f)) fail("{}: {} quantizer clip ratio {} is not in (0, 1]", source, what, clip);
    if (group < 0) fail("{}: {} quantizer group {} is negative", source, what, group);
  };
  check_spec(r.act.bits, r.act.clip_ratio, r.act.group, "activation");
  check_spec(r.lm_head_act.bits, r.lm_head_act.clip_ratio, r.lm_head_act.group, "lm_head activation");
  for (const auto& [slot, spec] : r.act_overrides)
    check_spec(spec.bits, spec.clip_ratio, spec.group, "activation override");
  check_spec(r.k_cache.bits, r.k_cache.clip_ratio, r.k_cache.group, "key cache");
  check_spec(r.v_cache.bits, r.v_cache.clip_ratio, r.v_cache.group, "value cache");
  return r;
}

void save_quantized_model(const std::string& path, const ModelWeights& weights,
                          const std::map<std::string, QuantizedMatrix>& qweights, const RuntimeRecipe& recipe,
                          const json& info, const std::string& tokenizer_json,
                          const QuantizedModelWriteOptions& options,
                          const std::map<std::string, WeightEncoding>& codebook_weights) {
  const LlamaConfig& c = weights.config;
  if (!info.is_object() && !info.is_null()) fail("{}: quantization info must be a JSON object", path);
  const std::vector<std::string> linears = encodable_weight_names(c);
  const std::set<std::string> linear_set(linears.begin(), linears.end());

  json tensor_meta = json::object();
  std::vector<SafetensorsEntry> entries;
  bool dense_codes = false;
  for (const auto& [name, e] : codebook_weights)
    if (qweights.count(name)) fail("{}: tensor {} is given both as an integer and as a codebook weight", path, name);
  for (const auto& [name, q] : qweights) {
    if (!linear_set.count(name))
      fail("{}: cannot store quantized tensor '{}': not a matrix of this model (e.g. layers.0.wq, lm_head, tok_embeddings)", path,
           name);
    const std::vector<int64_t> shape = encoded_shape(c, name);
    if (q.rows != shape[0] || q.cols != shape[1])
      fail("{}: quantized tensor {} is {}x{}, the model needs {}x{}", path, name, q.rows, q.cols, shape[0], shape[1]);
    q.validate(path, name);
    SafetensorsEntry packed;
    packed.name = name + ".qweight";
    packed.dtype = DType::kU8;
    const CodePacking packing = file_packing(q.bits);
    dense_codes = dense_codes || packing == CodePacking::kBits;
    packed.shape = {q.rows, packed_row_size(q.cols, q.bits, packing)};
    packed.data = pack_rows(q, packing);
    entries.push_back(std::move(packed));
    entries.push_back(float_vector_entry(name + ".scales", q.scales, q.rows, q.n_groups()));
    if (!q.symmetric) entries.push_back(float_vector_entry(name + ".zeros", q.zeros, q.rows, q.n_groups()));
    tensor_meta[name] = {{"kind", "int"},
                         {"bits", q.bits},
                         {"group", q.group},
                         {"symmetric", q.symmetric},
                         {"shape", shape},
                         {"packing", code_packing_name(packing)},
                         {"code_offset", q.symmetric ? (1 << (q.bits - 1)) : 0}};
  }
  for (const auto& [name, e] : codebook_weights) {
    if (!linear_set.count(name) || name == "tok_embeddings")
      fail("{}: cannot store codebook tensor '{}': not a linear of this model (e.g. layers.0.wq, lm_head)", path,
           name);
    if (e.kind != WeightKind::kCodebook)
      fail("{}: codebook tensor {} has encoding {}", path, name, weight_kind_name(e.kind));
    const std::vector<int64_t> shape = encoded_shape(c, name);
    if (e.rows != shape[0] || e.cols != shape[1])
      fail("{}: codebook tensor {} is {}x{}, the model needs {}x{}", path, name, e.rows, e.cols, shape[0], shape[1]);
    e.validate(path + ": " + name);
    tensor_meta[name] = write_codebook_entries(name, e, entries);
  }
  for_each_tensor(weights, [&](const std::string& name, const Tensor& t) {
    if (t.empty() || qweights.count(name) || codebook_weights.count(name)) return;
    for (float v : t.data)
      if (!std::isfinite(v)) fail("{}: tensor {} holds a non-finite value", path, name);
    // The large matrices (embedding table, lm_head) in 16 bits unless asked otherwise;
    // norms and biases are tiny and stay FP32.
    const bool half = options.fp16_tensors || (name == "tok_embeddings" && options.fp16_embedding) ||
                      (name == "lm_head" && options.fp16_lm_head);
    entries.push_back(fp_entry(name, t, half));
  });

  json meta = info.is_object() ? info : json::object();
  meta["format"] = kFormatName;
  // The lowest version that expresses the file: 2 for codebooks, 3 for dense 2/3-bit codes.
  meta["format_version"] = dense_codes ? 3 : codebook_weights.empty() ? 1 : 2;
  meta["quarot_version"] = kWriterVersion;
  meta["created"] = utc_timestamp();
  meta["config"] = config_to_json(c);
  meta["recipe"] = recipe_to_json(recipe);
  meta["tensors"] = tensor_meta;
  meta["fp_dtype"] = options.fp16_tensors ? "F16" : "F32";


  std::map<std::string, std::string> metadata;
  metadata[kMetadataKey] = meta.dump();
  metadata[kTokenizerKey] = tokenizer_json;
  write_safetensors(path, entries, metadata);
}

LoadedQuantizedModel load_quantized_model(const std::string& path, bool keep_quantized) {
  const auto file_ptr = std::make_shared<const SafetensorsFile>(path);
  const SafetensorsFile& file = *file_ptr;
  const auto it = file.metadata().find(kMetadataKey);
  if (it == file.metadata().end())
    fail("{}: not a quarot quantized model (safetensors without '{}' metadata)", path, kMetadataKey);
  LoadedQuantizedModel out;
  try {
    out.info = json::parse(it->second);
  } catch (const json::exception& e) {
    fail("{}: the quarot metadata is not valid JSON: {}", path, e.what());
  }
  const json& meta = out.info;
  if (!meta.is_object() || !meta.contains("format") || meta["format"] != kFormatName)
    fail("{}: the quarot metadata does not describe a '{}' file", path, kFormatName);
  if (!meta.contains("format_version") || !meta["format_version"].is_number_integer())
    fail("{}: the quarot metadata has no integer format_version", path);
  const int version = json_number<int>(meta["format_version"], path + ": format_version");
  if (version > kQuantizedFormatVersion)
    fail("{}: written by a newer quarot: format {}, this build reads {}", path, version, kQuantizedFormatVersion);
  if (version < 1) fail("{}: invalid format_version {}", path, version);
  if (!meta.contains("config") || !meta.contains("recipe") || !meta.contains("tensors") || !meta["tensors"].is_object())
    fail("{}: the quarot metadata lacks config, recipe or tensors", path);

  const LlamaConfig c = config_from_json(meta["config"], path);
  out.recipe = recipe_from_json(meta["recipe"], path);
  const auto tok = file.metadata().find(kTokenizerKey);
  if (tok != file.metadata().end()) out.tokenizer_json = tok->second;

  const json& tensor_meta = meta["tensors"];
  const std::vector<std::string> encodable = encodable_weight_names(c);
  const std::set<std::string> encodable_set(encodable.begin(), encodable.end());
  for (const auto& [name, m] : tensor_meta.items())
    if (!encodable_set.count(name)) fail("{}: metadata describes unknown quantized tensor '{}'", path, name);

  ModelWeights& w = out.weights;
  w.config = c;
  w.layers.resize(static_cast<size_t>(c.n_layers));
  for_each_tensor(w, [&](const std::string& name, Tensor& t) {
    if (tensor_meta.contains(name)) {
      try {
        out.encoded.emplace(name, read_int_encoding(file_ptr, name, tensor_meta[name], encoded_shape(c, name)));
      } catch (const json::exception& e) {
        fail("{}: malformed metadata for tensor {}: {}", path, name, e.what());
      }
      return;
    }
    const bool optional = name == "lm_head" || ((name.ends_with(".bq") || name.ends_with(".bk") || name.ends_with(".bv")) && !c.qkv_bias);
    if (file.find(name) == nullptr) {
      if (optional) return;
      fail("{}: tensor {} is missing", path, name);
    }
    if (encodable_set.count(name)) {
      // Matrices stay as stored (16-bit floats are used in place).
      out.encoded.emplace(name, read_float_encoding(file_ptr, name, encoded_shape(c, name)));
      return;
    }
    t = file.read(name);
  });
  std::set<std::string> supplied;
  for (const auto& [name, e] : out.encoded) supplied.insert(name);
  w.validate(path, supplied);
  if (keep_quantized) {
    for (const auto& [name, e] : out.encoded)
      if (e.kind == WeightKind::kIntGrid) out.qweights.emplace(name, QuantizedMatrix::from_encoding(e));
    out.weights = out.dequantized_weights();
  }
  return out;
}

int64_t LoadedQuantizedModel::parameter_count() const {
  int64_t n = weights.parameter_count();
  for (const auto& [name, e] : encoded)
    if (tensor_by_name(weights, name).empty()) n += e.rows * e.cols;  // not also converted into `weights`
  return n;
}

ModelWeights LoadedQuantizedModel::dequantized_weights() const {
  ModelWeights w = weights;
  for (const auto& [name, e] : encoded) {
    Tensor& t = tensor_by_name(w, name);
    t = Tensor({e.rows, e.cols});
    t.data = e.dequantize();
  }
  return w;
}

bool is_quantized_model_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return false;
  try {
    SafetensorsFile file(path);
    return file.metadata().count(kMetadataKey) != 0;
  } catch (const Error&) {
    return false;
  }
}

}  // namespace quarot
