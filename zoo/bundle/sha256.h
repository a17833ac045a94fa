// zoo/bundle/sha256.h: SHA-256 digests (OpenSSL's libcrypto), as lower-case hex.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace nasoa::zoo {

// A digest of bytes fed in pieces, for what is never held whole in memory.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(std::string_view bytes);
  // The raw 32-byte digest of everything fed; the object is spent after it.
  std::string finish_bytes();

 private:
  struct Context;
  std::unique_ptr<Context> context_;
};

std::string sha256_hex(std::string_view bytes);

// The raw 32-byte digest, for formats that seal themselves with it.
std::string sha256_bytes(std::string_view bytes);

// Digest of a whole file, read in chunks. Throws Error{kNotFound or kIo}.
std::string sha256_file_hex(const std::string& path);

}  // namespace nasoa::zoo
