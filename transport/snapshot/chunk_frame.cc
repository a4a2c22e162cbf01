#include "transport/snapshot/chunk_frame.h"

#include <cstdint>
#include <utility>

namespace raftgrpc {
namespace {

// Wire tags of SnapshotFrame's fields (transport.proto).
constexpr uint64_t kChunkTag = (2 << 3) | 2;  // bytes chunk = 2 (length-delimited)
constexpr uint64_t kCrcTag = (4 << 3) | 5;    // fixed32 chunk_crc32c = 4

// Reads across the slices of one buffer.
class Cursor {
 public:
  explicit Cursor(const std::vector<grpc::Slice>& slices) : slices_(slices) { Skip(); }

  bool AtEnd() const { return i_ == slices_.size(); }

  bool Byte(uint8_t* b) {
    if (AtEnd()) return false;
    *b = slices_[i_].begin()[off_++];
    Skip();
    return true;
  }

  // A field's tag. Protobuf reads a tag in at most 5 bytes (a uint32),
  // padded or not; a longer one fails its parse, so it must fail here.
  bool Tag(uint64_t* v) { return Varint(v, 5) && *v <= UINT32_MAX; }

  // A length. Protobuf reads one in at most 5 bytes and below 2 GiB (less
  // a few bytes of its own); a chunk frame is far smaller (gRPC's receive
  // limit), so lengths of 1 GiB and more are left to protobuf.
  bool Size(uint64_t* v) { return Varint(v, 5) && *v < (uint64_t{1} << 30); }

  // The next n bytes, as sub-slices; false if fewer are left.
  bool Take(uint64_t n, std::vector<grpc::Slice>* out) {
    while (n > 0) {
      if (AtEnd()) return false;
      const size_t here = std::min<uint64_t>(n, slices_[i_].size() - off_);
      out->push_back(slices_[i_].sub(off_, off_ + here));
      off_ += here;
      n -= here;
      Skip();
    }
    return true;
  }

 private:
  // A varint of at most `max_bytes` bytes (padded encodings included).
  bool Varint(uint64_t* v, int max_bytes) {
    *v = 0;
    for (int i = 0; i < max_bytes; ++i) {
      uint8_t b;
      if (!Byte(&b)) return false;
      *v |= static_cast<uint64_t>(b & 0x7f) << (7 * i);
      if ((b & 0x80) == 0) return true;
    }
    return false;
  }

  // Past exhausted (and empty) slices.
  void Skip() {
    while (i_ < slices_.size() && off_ == slices_[i_].size()) {
      ++i_;
      off_ = 0;
    }
  }

  const std::vector<grpc::Slice>& slices_;
  size_t i_ = 0;
  size_t off_ = 0;
};

}  // namespace

bool SplitChunkFrame(const grpc::ByteBuffer& buf, ChunkFrame* out) {
  std::vector<grpc::Slice> slices;
  if (!buf.Valid() || !buf.Dump(&slices).ok()) return false;
  Cursor c(slices);
  ChunkFrame f;
  bool chunk = false;
  while (!c.AtEnd()) {
    uint64_t tag;
    if (!c.Tag(&tag)) return false;
    if (tag == kChunkTag) {
      uint64_t n;
      if (!c.Size(&n)) return false;
      f.data.clear();
      if (!c.Take(n, &f.data)) return false;
      f.size = static_cast<size_t>(n);
      chunk = true;
    } else if (tag == kCrcTag) {
      uint32_t crc = 0;
      for (int k = 0; k < 4; ++k) {
        uint8_t b;
        if (!c.Byte(&b)) return false;
        crc |= static_cast<uint32_t>(b) << (8 * k);
      }
      f.has_crc = true;
      f.crc = crc;
    } else {
      return false;
    }
  }
  if (!chunk) return false;  // only a checksum: not a chunk frame
  *out = std::move(f);
  return true;
}

grpc::ByteBuffer MakeChunkFrame(grpc::Slice data, uint32_t crc) {
  char head[1 + 10];
  size_t h = 0;
  head[h++] = static_cast<char>(kChunkTag);
  for (uint64_t n = data.size();; n >>= 7) {
    const uint8_t b = n & 0x7f;
    if (n < 0x80) {
      head[h++] = static_cast<char>(b);
      break;
    }
    head[h++] = static_cast<char>(b | 0x80);
  }
  const char tail[5] = {static_cast<char>(kCrcTag), static_cast<char>(crc & 0xff),
                        static_cast<char>((crc >> 8) & 0xff), static_cast<char>((crc >> 16) & 0xff),
                        static_cast<char>(crc >> 24)};
  grpc::Slice parts[3] = {grpc::Slice(head, h), std::move(data), grpc::Slice(tail, sizeof tail)};
  return grpc::ByteBuffer(parts, 3);
}

}  // namespace raftgrpc
