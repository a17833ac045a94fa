#include "zoo/bundle/sha256.h"

#include <openssl/evp.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>

#include "nasoa/error.h"

namespace nasoa::zoo {
namespace {

struct DigestContext {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx{EVP_MD_CTX_new(), &EVP_MD_CTX_free};

  DigestContext() {
    if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1)
      throw Error(ErrorCode::kInternal, "OpenSSL could not start a SHA-256 digest");
  }
  void update(const char* data, std::size_t size) {
    if (EVP_DigestUpdate(ctx.get(), data, size) != 1)
      throw Error(ErrorCode::kInternal, "OpenSSL SHA-256 update failed");
  }
  std::string raw() {
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int size = 0;
    if (EVP_DigestFinal_ex(ctx.get(), digest.data(), &size) != 1)
      throw Error(ErrorCode::kInternal, "OpenSSL SHA-256 final failed");
    return std::string(reinterpret_cast<const char*>(digest.data()), size);
  }
  std::string hex() {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (const char c : raw()) {
      out += kHex[static_cast<unsigned char>(c) >> 4];
      out += kHex[static_cast<unsigned char>(c) & 15];
    }
    return out;
  }
};

}  // namespace

struct Sha256::Context : DigestContext {};

Sha256::Sha256() : context_(std::make_unique<Context>()) {}
Sha256::~Sha256() = default;
void Sha256::update(std::string_view bytes) { context_->update(bytes.data(), bytes.size()); }
std::string Sha256::finish_bytes() { return context_->raw(); }

std::string sha256_hex(std::string_view bytes) {
  DigestContext d;
  d.update(bytes.data(), bytes.size());
  return d.hex();
}

std::string sha256_bytes(std::string_view bytes) {
  DigestContext d;
  d.update(bytes.data(), bytes.size());
  return d.raw();
}

std::string sha256_file_hex(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw Error(errno == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo,
                path + ": cannot open: " + std::strerror(errno));
  DigestContext d;
  std::array<char, 1 << 16> buffer{};
  while (in) {
    in.read(buffer.data(), buffer.size());
    d.update(buffer.data(), static_cast<std::size_t>(in.gcount()));
  }
  if (in.bad()) throw Error(ErrorCode::kIo, path + ": read failed");
  return d.hex();
}

}  // namespace nasoa::zoo
