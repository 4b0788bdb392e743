// Optimizer::save / Optimizer::load: the optimizer's state_dict in a safetensors file (an 8-byte
// little-endian header length, a JSON header, then the tensors' bytes, back to back). Tensor
// names and metadata mirror torch's state_dict: "state.<index>.<key>", and in "__metadata__"
// (string values only, as the format requires) "param_groups" as JSON. The Python side of the
// same format is python/optimcore/checkpoint.py.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <set>
#include <sstream>
#include <stdexcept>
#include <variant>

#include "optimizer_impl.hpp"

namespace optimcore {
namespace {

constexpr const char* kFormat = "optimcore.optimizer";

// --- a small JSON value, parser and writer (the header's needs, strictly checked) -----------

struct Json;
using JsonArray = std::vector<Json>;
using JsonObject = std::vector<std::pair<std::string, Json>>;  // keeps the file's order
struct Json {
  std::variant<std::nullptr_t, bool, double, std::string, JsonArray, JsonObject> v;
  bool is_number() const { return std::holds_alternative<double>(v); }
  bool is_string() const { return std::holds_alternative<std::string>(v); }
  bool is_bool() const { return std::holds_alternative<bool>(v); }
  bool is_array() const { return std::holds_alternative<JsonArray>(v); }
  bool is_object() const { return std::holds_alternative<JsonObject>(v); }
  const Json* get(const std::string& key) const {
    for (const auto& [k, value] : std::get<JsonObject>(v))
      if (k == key) return &value;
    return nullptr;
  }
};

[[noreturn]] void corrupt(const std::string& path, const std::string& why) {
  throw std::runtime_error("optimizer checkpoint '" + path + "': " + why);
}

class Parser {
 public:
  Parser(const std::string& text, std::string what) : s_(text), what_(std::move(what)) {}
  Json document() {
    Json j = value(0);
    skip_space();
    if (i_ != s_.size()) fail("trailing characters");
    return j;
  }

 private:
  [[noreturn]] void fail(const std::string& why) {
    throw std::runtime_error(what_ + ": invalid JSON at byte " + std::to_string(i_) + " (" + why +
                             ")");
  }
  void skip_space() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\r' || s_[i_] == '\t'))
      ++i_;
  }
  bool consume(const char* word) {
    const std::size_t n = std::strlen(word);
    if (s_.compare(i_, n, word) != 0) return false;
    i_ += n;
    return true;
  }
  Json value(int depth) {
    if (depth > 64) fail("nested too deeply");
    skip_space();
    if (i_ >= s_.size()) fail("unexpected end");
    const char c = s_[i_];
    if (c == '{') return object(depth);
    if (c == '[') return array(depth);
    if (c == '"') return Json{string()};
    if (consume("null")) return Json{nullptr};
    if (consume("true")) return Json{true};
    if (consume("false")) return Json{false};
    if (consume("NaN")) return Json{std::numeric_limits<double>::quiet_NaN()};
    if (consume("Infinity")) return Json{std::numeric_limits<double>::infinity()};
    if (consume("-Infinity")) return Json{-std::numeric_limits<double>::infinity()};
    return Json{number()};
  }
  double number() {
    const std::size_t start = i_;
    while (i_ < s_.size() && std::strchr("+-0123456789.eE", s_[i_])) ++i_;
    if (start == i_) fail("expected a value");
    const std::string text = s_.substr(start, i_ - start);
    std::istringstream in(text);
    in.imbue(std::locale::classic());
    double v;
    in >> v;
    if (in.fail() || !in.eof()) fail("bad number '" + text + "'");
    return v;
  }
  std::string string() {
    ++i_;  // opening quote
    std::string out;
    while (true) {
      if (i_ >= s_.size()) fail("unterminated string");
      const char c = s_[i_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) fail("control character in string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i_ >= s_.size()) fail("unterminated escape");
      const char e = s_[i_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          if (i_ + 4 > s_.size()) fail("short \\u escape");
          unsigned long code = 0;
          for (int k = 0; k < 4; ++k) {
            const char h = s_[i_++];
            const int digit = h >= '0' && h <= '9'   ? h - '0'
                              : h >= 'a' && h <= 'f' ? h - 'a' + 10
                              : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                                     : -1;
            if (digit < 0) fail("bad \\u escape");
            code = code * 16 + static_cast<unsigned long>(digit);
          }
          if (code < 0x80) {
            out += static_cast<char>(code);
          } else if (code < 0x800) {
            out += static_cast<char>(0xC0 | (code >> 6));
            out += static_cast<char>(0x80 | (code & 0x3F));
          } else {  // surrogate pairs are kept as two 3-byte sequences: names here are ASCII
            out += static_cast<char>(0xE0 | (code >> 12));
            out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (code & 0x3F));
          }
          break;
        }
        default: fail("bad escape");
      }
    }
  }
  Json array(int depth) {
    ++i_;
    JsonArray a;
    skip_space();
    if (i_ < s_.size() && s_[i_] == ']') {
      ++i_;
      return Json{a};
    }
    while (true) {
      a.push_back(value(depth + 1));
      skip_space();
      if (i_ < s_.size() && s_[i_] == ',') { ++i_; continue; }
      if (i_ < s_.size() && s_[i_] == ']') { ++i_; return Json{a}; }
      fail("expected ',' or ']'");
    }
  }
  Json object(int depth) {
    ++i_;
    JsonObject o;
    skip_space();
    if (i_ < s_.size() && s_[i_] == '}') {
      ++i_;
      return Json{o};
    }
    while (true) {
      skip_space();
      if (i_ >= s_.size() || s_[i_] != '"') fail("expected a key");
      std::string key = string();
      for (const auto& [k, v] : o)
        if (k == key) fail("duplicate key '" + key + "'");
      skip_space();
      if (i_ >= s_.size() || s_[i_] != ':') fail("expected ':'");
      ++i_;
      o.emplace_back(std::move(key), value(depth + 1));
      skip_space();
      if (i_ < s_.size() && s_[i_] == ',') { ++i_; continue; }
      if (i_ < s_.size() && s_[i_] == '}') { ++i_; return Json{o}; }
      fail("expected ',' or '}'");
    }
  }

  const std::string& s_;
  std::string what_;
  std::size_t i_ = 0;
};

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string number_text(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  if (v == std::floor(v) && std::fabs(v) < 1e15) {  // integral values as integers, like Python
    std::ostringstream out;
    out << static_cast<long long>(v);
    return out.str();
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  // Shortest text that reads back as the same double (Python's repr does the same).
  for (int precision = 1; precision < 17; ++precision) {
    char shorter[32];
    std::snprintf(shorter, sizeof shorter, "%.*g", precision, v);
    if (std::strtod(shorter, nullptr) == v) return shorter;
  }
  return buf;
}

std::string hyperparameter_json(const Hyperparameter& h) {
  switch (h.kind()) {
    case Hyperparameter::Kind::flag: return h.flag() ? "true" : "false";
    case Hyperparameter::Kind::pair:
      return "[" + number_text(h.first()) + ", " + number_text(h.second()) + "]";
    case Hyperparameter::Kind::text: return quote(h.text());
    case Hyperparameter::Kind::none: return "null";
    case Hyperparameter::Kind::number: break;
  }
  return number_text(h.number());
}

const char* safetensors_dtype(DType d) {
  switch (d) {
    case DType::float32: return "F32";
    case DType::float64: return "F64";
    case DType::bfloat16: return "BF16";
    case DType::float16: return "F16";
  }
  return "";
}

// A tensor of the file: its dtype code, element count, 0-d or not, and bytes.
struct FileTensor {
  std::string dtype;
  std::size_t numel = 0;
  bool scalar = false;
  const unsigned char* data = nullptr;
  std::size_t bytes = 0;
};

std::size_t file_element_size(const std::string& dtype) {
  if (dtype == "F64" || dtype == "I64") return 8;
  if (dtype == "F32" || dtype == "I32") return 4;
  if (dtype == "BF16" || dtype == "F16") return 2;
  return 0;
}

// One number of a 0-d (or 1-element) tensor of the file, as double.
double file_scalar(const FileTensor& t) {
  double v = 0.0;
  if (t.dtype == "F32") { float f; std::memcpy(&f, t.data, 4); v = f; }
  else if (t.dtype == "F64") { std::memcpy(&v, t.data, 8); }
  else if (t.dtype == "I64") { std::int64_t i; std::memcpy(&i, t.data, 8); v = static_cast<double>(i); }
  else if (t.dtype == "I32") { std::int32_t i; std::memcpy(&i, t.data, 4); v = i; }
  else throw std::runtime_error("a 0-d state of dtype " + t.dtype);
  return v;
}

Hyperparameter hyperparameter_from(const Json& j, const std::string& where) {
  if (j.is_bool()) return Hyperparameter(std::get<bool>(j.v));
  if (j.is_string()) return Hyperparameter(std::get<std::string>(j.v));
  if (std::holds_alternative<std::nullptr_t>(j.v)) return Hyperparameter(nullptr);
  if (j.is_number()) return Hyperparameter(std::get<double>(j.v));
  if (j.is_array()) {
    const JsonArray& a = std::get<JsonArray>(j.v);
    if (a.size() == 2 && a[0].is_number() && a[1].is_number())
      return Hyperparameter(std::get<double>(a[0].v), std::get<double>(a[1].v));
  }
  throw std::runtime_error(where + " is not a number, a flag or a pair of numbers");
}

}  // namespace

// LBFGS and ConjugateGradient keep lists of vectors (old_dirs, ...), not yet in the format.
static void refuse_closure_state(const detail::Impl& m) {
  if (m.cls->closure != detail::ClassDesc::Closure::none)
    throw std::runtime_error("optimizer checkpoints of " + m.cls->name +
                             " are not supported yet (its state holds lists of vectors)");
}

void Optimizer::save(const std::string& path) const {
  static_assert(sizeof(float) == 4 && sizeof(double) == 8, "IEEE float and double");
  const detail::Impl& m = impl();
  refuse_closure_state(m);
  // param_groups, as torch's state_dict has them ("params": indices).
  std::string groups = "[";
  for (std::size_t g = 0; g < m.groups.size(); ++g) {
    const detail::Group& group = m.groups[g];
    groups += g ? ", {" : "{";
    for (const auto& [key, value] : group.options)
      groups += quote(key) + ": " + hyperparameter_json(value) + ", ";
    groups += "\"params\": [";
    for (std::size_t i = 0; i < group.params.size(); ++i)
      groups += (i ? ", " : "") + std::to_string(group.first_slot + i);
    groups += "]}";
  }
  groups += "]";

  std::string header = "{\"__metadata__\": {\"format\": " + quote(kFormat) +
                       ", \"optimizer\": " + quote(m.cls->name) +
                       ", \"param_groups\": " + quote(groups) +
                       ", \"version\": " + quote(dispatch::build_info().version) + "}";
  std::vector<std::pair<const void*, std::size_t>> blobs;
  std::size_t offset = 0;
  for (std::size_t index = 0; index < m.slots.size(); ++index)
    for (const detail::StateEntry& e : m.slots[index].state.entries) {
      if (!e.buffer.data) continue;
      const std::size_t bytes = e.numel * element_size(e.dtype);
      header += ", " + quote("state." + std::to_string(index) + "." + e.key) +
                ": {\"dtype\": \"" + safetensors_dtype(e.dtype) + "\", \"shape\": " +
                (e.scalar ? std::string("[]") : "[" + std::to_string(e.numel) + "]") +
                ", \"data_offsets\": [" + std::to_string(offset) + ", " +
                std::to_string(offset + bytes) + "]}";
      blobs.emplace_back(e.buffer.data.get(), bytes);
      offset += bytes;
    }
  header += "}";
  header.append((8 - header.size() % 8) % 8, ' ');  // the tensors start 8-byte aligned

  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw std::runtime_error("cannot write optimizer checkpoint '" + path + "'");
    unsigned char size[8];
    const std::uint64_t n = header.size();
    for (int b = 0; b < 8; ++b) size[b] = static_cast<unsigned char>(n >> (8 * b));
    out.write(reinterpret_cast<const char*>(size), 8);
    out.write(header.data(), static_cast<std::streamsize>(header.size()));
    for (const auto& [data, bytes] : blobs)
      out.write(static_cast<const char*>(data), static_cast<std::streamsize>(bytes));
    out.flush();
    if (!out) throw std::runtime_error("cannot write optimizer checkpoint '" + path + "'");
  }
  // Replace the old file only once the new one is complete.
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw std::runtime_error("cannot write optimizer checkpoint '" + path + "'");
  }
}

void Optimizer::load(const std::string& path) {
  detail::Impl& m = impl();
  refuse_closure_state(m);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read optimizer checkpoint '" + path + "'");
  const std::string file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (file.size() < 8) corrupt(path, "shorter than a safetensors header");
  std::uint64_t header_size = 0;
  for (int b = 7; b >= 0; --b)
    header_size = (header_size << 8) | static_cast<unsigned char>(file[static_cast<std::size_t>(b)]);
  if (header_size > file.size() - 8) corrupt(path, "truncated (header runs past the end)");
  const std::string header_text = file.substr(8, static_cast<std::size_t>(header_size));
  const Json header = Parser(header_text, "optimizer checkpoint '" + path + "'").document();
  if (!header.is_object()) corrupt(path, "the header is not a JSON object");
  const unsigned char* data = reinterpret_cast<const unsigned char*>(file.data()) + 8 + header_size;
  const std::size_t data_size = file.size() - 8 - static_cast<std::size_t>(header_size);

  // Metadata: format, class, param groups.
  const Json* meta = header.get("__metadata__");
  if (!meta || !meta->is_object()) corrupt(path, "no __metadata__: not an optimizer checkpoint");
  const Json* format = meta->get("format");
  if (!format || !format->is_string() || std::get<std::string>(format->v) != kFormat)
    corrupt(path, std::string("metadata 'format' is not '") + kFormat +
                      "': not an optimizer checkpoint");
  const Json* cls = meta->get("optimizer");
  if (cls && cls->is_string() && !std::get<std::string>(cls->v).empty() &&
      std::get<std::string>(cls->v) != m.cls->name)
    corrupt(path, "saved from " + std::get<std::string>(cls->v) + ", not " + m.cls->name);
  const Json* groups_text = meta->get("param_groups");
  if (!groups_text || !groups_text->is_string()) corrupt(path, "no param_groups in the metadata");
  const Json groups = Parser(std::get<std::string>(groups_text->v),
                             "optimizer checkpoint '" + path + "' param_groups")
                          .document();
  if (!groups.is_array()) corrupt(path, "param_groups is not a list");
  const JsonArray& saved_groups = std::get<JsonArray>(groups.v);
  if (saved_groups.size() != m.groups.size())
    corrupt(path, "loaded state dict has a different number of parameter groups (" +
                      std::to_string(saved_groups.size()) + ", this optimizer has " +
                      std::to_string(m.groups.size()) + ")");
  std::vector<Options> new_options(m.groups.size());
  std::vector<std::size_t> saved_index(m.slots.size());  // this optimizer's index -> file's
  std::set<std::size_t> seen_saved;
  for (std::size_t g = 0; g < m.groups.size(); ++g) {
    const std::string where = "param group " + std::to_string(g);
    const Json& sg = saved_groups[g];
    if (!sg.is_object()) corrupt(path, where + " is not an object");
    const Json* params = sg.get("params");
    if (!params || !params->is_array()) corrupt(path, where + " has no params");
    const JsonArray& ids = std::get<JsonArray>(params->v);
    if (ids.size() != m.groups[g].params.size())
      corrupt(path, "loaded state dict contains a parameter group that doesn't match the size "
                    "of optimizer's group (" + where + ": " + std::to_string(ids.size()) +
                    " saved, " + std::to_string(m.groups[g].params.size()) + " here)");
    for (std::size_t i = 0; i < ids.size(); ++i) {
      const double id = ids[i].is_number() ? std::get<double>(ids[i].v) : -1.0;
      if (!(id >= 0 && id == std::floor(id) && id < 1e15) ||
          !seen_saved.insert(static_cast<std::size_t>(id)).second)
        corrupt(path, where + ": params must be distinct parameter indices");
      saved_index[m.groups[g].first_slot + i] = static_cast<std::size_t>(id);
    }
    Options o = m.groups[g].options;
    for (const auto& [key, value] : std::get<JsonObject>(sg.v)) {
      if (key == "params") continue;
      if (!o.count(key)) {  // torch's foreach, fused, ...; a scheduler's initial_lr: kept if C++
        try {              // can hold them, as torch keeps every key
          o[key] = hyperparameter_from(value, "");
        } catch (const std::runtime_error&) {
        }  // (lists of other lengths, objects: not a param_groups value C++ has)
        continue;
      }
      Hyperparameter h;
      try {
        h = hyperparameter_from(value, where + ": '" + key + "'");
      } catch (const std::runtime_error& e) {
        corrupt(path, e.what());
      }
      if (!detail::same_kind(*m.cls, key, o[key], h))
        corrupt(path, where + ": '" + key + "' is " + detail::kind_name(h) + ", not " +
                          detail::kind_name(o[key]));
      o[key] = h;
    }
    try {
      detail::check_group(*m.cls, o, g);
    } catch (const std::invalid_argument& e) {
      corrupt(path, e.what());
    }
    new_options[g] = std::move(o);
  }

  // Tensors: each "state.<saved index>.<key>" in bounds, of a known dtype and size.
  std::map<std::size_t, std::map<std::string, FileTensor>> saved_state;
  std::vector<std::pair<std::size_t, std::size_t>> extents;
  for (const auto& [name, entry] : std::get<JsonObject>(header.v)) {
    if (name == "__metadata__") continue;
    const std::string where = "tensor '" + name + "'";
    if (name.compare(0, 6, "state.") != 0) corrupt(path, where + " is not optimizer state");
    const std::size_t dot = name.find('.', 6);
    if (dot == std::string::npos || dot == 6) corrupt(path, where + " is not state.<index>.<key>");
    const std::string index_text = name.substr(6, dot - 6);
    if (index_text.find_first_not_of("0123456789") != std::string::npos || index_text.size() > 15)
      corrupt(path, where + " is not state.<index>.<key>");
    const std::size_t index = std::stoull(index_text);
    if (!seen_saved.count(index)) corrupt(path, where + ": no parameter " + index_text);
    if (!entry.is_object()) corrupt(path, where + " is not an object");
    const Json* dtype = entry.get("dtype");
    const Json* shape = entry.get("shape");
    const Json* offsets = entry.get("data_offsets");
    if (!dtype || !dtype->is_string() || !shape || !shape->is_array() || !offsets ||
        !offsets->is_array() || std::get<JsonArray>(offsets->v).size() != 2)
      corrupt(path, where + ": needs dtype, shape and data_offsets");
    FileTensor t;
    t.dtype = std::get<std::string>(dtype->v);
    const std::size_t esize = file_element_size(t.dtype);
    if (!esize) corrupt(path, where + ": unsupported dtype " + t.dtype);
    t.numel = 1;
    for (const Json& d : std::get<JsonArray>(shape->v)) {
      const double n = d.is_number() ? std::get<double>(d.v) : -1.0;
      if (!(n >= 0 && n == std::floor(n) && n < 1e15)) corrupt(path, where + ": bad shape");
      const auto dim = static_cast<std::size_t>(n);
      if (dim && t.numel > (std::size_t{1} << 50) / dim) corrupt(path, where + ": shape too large");
      t.numel *= dim;
    }
    t.scalar = std::get<JsonArray>(shape->v).empty();
    const JsonArray& off = std::get<JsonArray>(offsets->v);
    const double b = off[0].is_number() ? std::get<double>(off[0].v) : -1.0;
    const double e = off[1].is_number() ? std::get<double>(off[1].v) : -1.0;
    if (!(b >= 0 && e >= b && e <= static_cast<double>(data_size)))
      corrupt(path, where + ": data_offsets outside the file (truncated?)");
    t.data = data + static_cast<std::size_t>(b);
    t.bytes = static_cast<std::size_t>(e - b);
    if (t.bytes != t.numel * esize) corrupt(path, where + ": data_offsets do not match its shape");
    extents.emplace_back(static_cast<std::size_t>(b), static_cast<std::size_t>(e));
    saved_state[index][name.substr(dot + 1)] = t;
  }
  std::sort(extents.begin(), extents.end());
  for (std::size_t k = 1; k < extents.size(); ++k)
    if (extents[k].first < extents[k - 1].second) corrupt(path, "tensors overlap in the file");

  // Every parameter's new state, checked against its group's (new) options, built aside.
  std::vector<detail::ParamStateStore> stores(m.slots.size());
  for (std::size_t index = 0; index < m.slots.size(); ++index) {
    const Param& p = m.param(index);
    const std::size_t g = m.slots[index].group;
    const std::string where = "parameter " + std::to_string(index);
    detail::ParamStateStore s = m.empty_state(p);
    const auto it = saved_state.find(saved_index[index]);
    if (it != saved_state.end()) {
      std::map<std::string, FileTensor> tensors = it->second;
      for (detail::StateEntry& e : s.entries) {
        const auto t = tensors.find(e.key);
        if (t == tensors.end()) continue;
        const FileTensor& f = t->second;
        if (e.scalar) {
          if (f.numel != 1) corrupt(path, where + ": '" + e.key + "' is not a single number");
          double v;
          try {
            v = file_scalar(f);
          } catch (const std::exception& ex) {
            corrupt(path, where + ": '" + e.key + "': " + ex.what());
          }
          e.buffer.allocate(element_size(e.dtype));
          if (e.dtype == DType::float64) std::memcpy(e.buffer.data.get(), &v, 8);
          else { const float fv = static_cast<float>(v); std::memcpy(e.buffer.data.get(), &fv, 4); }
        } else {
          if (f.numel != p.numel)
            corrupt(path, where + ": '" + e.key + "' has " + std::to_string(f.numel) +
                              " elements, the parameter " + std::to_string(p.numel));
          if (f.dtype != safetensors_dtype(p.dtype))
            corrupt(path, where + ": '" + e.key + "' is " + f.dtype + ", the parameter " +
                              dtype_name(p.dtype));
          e.buffer.allocate(f.bytes);
          std::memcpy(e.buffer.data.get(), f.data, f.bytes);
        }
        tensors.erase(t);
      }
      if (!tensors.empty())
        corrupt(path, where + ": unknown state '" + tensors.begin()->first + "' for " +
                          m.cls->name);
      // Partial state is corrupt: a parameter that has state has all that its options use
      // (a state its options did not use before, like max_exp_avg_sq, starts as on a first step).
      if (!s.empty()) {
        for (const detail::StateEntry& e : s.entries) {
          if (e.buffer.data) continue;
          const bool per_element = std::find(m.cls->rule->states.begin(),
                                             m.cls->rule->states.end(),
                                             e.key) != m.cls->rule->states.end();
          const bool used = !per_element ? true
                            : !m.cls->uses_state ? true
                                                 : m.cls->uses_state(new_options[g], e.key);
          if (used && !m.cls->optional_state.count(e.key))
            corrupt(path, where + " has state but no '" + e.key + "'");
        }
      }
    }
    stores[index] = std::move(s);
  }

  // Commit: nothing above changed the optimizer.
  for (std::size_t g = 0; g < m.groups.size(); ++g) m.groups[g].options = std::move(new_options[g]);
  for (std::size_t index = 0; index < m.slots.size(); ++index)
    m.slots[index].state = std::move(stores[index]);
}

}  // namespace optimcore
