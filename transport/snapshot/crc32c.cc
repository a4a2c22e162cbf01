#include "transport/snapshot/crc32c.h"

#include <algorithm>
#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace raftgrpc {
namespace {

constexpr uint32_t kPoly = 0x82f63b78;  // reflected Castagnoli polynomial

std::array<uint32_t, 256> MakeTable() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (kPoly & (0u - (c & 1)));
    t[i] = c;
  }
  return t;
}

uint32_t Software(uint32_t crc, const uint8_t* p, size_t n) {
  static const std::array<uint32_t, 256> table = MakeTable();
  for (size_t i = 0; i < n; ++i) crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
  return crc;
}

// A 32x32 matrix over GF(2), one column per input bit, applied to `vec`.
uint32_t Gf2Times(const uint32_t* mat, uint32_t vec) {
  uint32_t sum = 0;
  for (; vec != 0; vec >>= 1, ++mat) {
    if (vec & 1) sum ^= *mat;
  }
  return sum;
}

void Gf2Square(uint32_t* square, const uint32_t* mat) {
  for (int n = 0; n < 32; ++n) square[n] = Gf2Times(mat, mat[n]);
}

// ops.m[k] appends 2^k zero bytes to a CRC register (a linear map), built
// once by squaring the one-bit map.
struct ZeroOps {
  uint32_t m[64][32];
  ZeroOps() {
    uint32_t bit[32], two[32], four[32];
    bit[0] = kPoly;
    for (int n = 1; n < 32; ++n) bit[n] = 1u << (n - 1);
    Gf2Square(two, bit);
    Gf2Square(four, two);
    Gf2Square(m[0], four);  // one zero byte
    for (int k = 1; k < 64; ++k) Gf2Square(m[k], m[k - 1]);
  }
};

#if defined(__x86_64__)
// `reg`: the CRC register (inverted form).
__attribute__((target("sse4.2"))) uint32_t Hardware(uint32_t reg, const uint8_t* p, size_t n) {
  uint64_t c = reg;
  while (n >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    c = _mm_crc32_u64(c, v);
    p += 8;
    n -= 8;
  }
  uint32_t c32 = static_cast<uint32_t>(c);
  while (n-- > 0) c32 = _mm_crc32_u8(c32, *p++);
  return c32;
}

// Three independent streams over the three thirds of the data, combined:
// the crc32 instruction takes 3 cycles but can start every cycle, so one
// stream leaves two thirds of it idle. Extends `crc` (final form) by the
// first *done bytes.
__attribute__((target("sse4.2"))) uint32_t Interleaved(uint32_t crc, const uint8_t* p, size_t n,
                                                       size_t* done) {
  const size_t third = (n / 3) & ~size_t{7};
  const uint8_t* p1 = p + third;
  const uint8_t* p2 = p + 2 * third;
  uint64_t a = ~crc, b = 0xffffffffu, c = 0xffffffffu;
  for (size_t i = 0; i < third; i += 8) {
    uint64_t va, vb, vc;
    std::memcpy(&va, p + i, 8);
    std::memcpy(&vb, p1 + i, 8);
    std::memcpy(&vc, p2 + i, 8);
    a = _mm_crc32_u64(a, va);
    b = _mm_crc32_u64(b, vb);
    c = _mm_crc32_u64(c, vc);
  }
  *done = 3 * third;
  const uint32_t ab = Crc32cCombine(~static_cast<uint32_t>(a), ~static_cast<uint32_t>(b), third);
  return Crc32cCombine(ab, ~static_cast<uint32_t>(c), third);
}

// Interleaved over data in pieces (received slices of about 13 KiB), as
// one stream: per-piece calls would pay two combines per piece, which
// took as long as the checksum itself (perf, 2026-11-30).
__attribute__((target("sse4.2"))) uint32_t InterleavedPieces(
    uint32_t crc, const std::vector<absl::string_view>& pieces, size_t n) {
  const size_t third = (n / 3) & ~size_t{7};
  // Three cursors: piece index and offset in it.
  struct Cursor {
    size_t i = 0, off = 0;
  } cur[3];
  auto seek = [&](Cursor* c, size_t pos) {
    while (pos >= pieces[c->i].size()) pos -= pieces[c->i++].size();
    c->off = pos;
  };
  seek(&cur[1], third);
  seek(&cur[2], 2 * third);
  uint64_t reg[3] = {~crc, 0xffffffffu, 0xffffffffu};
  for (size_t done = 0; done < third;) {
    size_t step = third - done;
    for (Cursor& c : cur) {
      while (c.off == pieces[c.i].size()) c = Cursor{c.i + 1, 0};
      step = std::min(step, pieces[c.i].size() - c.off);
    }
    const uint8_t* p[3];
    for (int k = 0; k < 3; ++k) {
      p[k] = reinterpret_cast<const uint8_t*>(pieces[cur[k].i].data()) + cur[k].off;
      cur[k].off += step;
    }
    size_t j = 0;
    for (; j + 8 <= step; j += 8) {
      uint64_t v[3];
      for (int k = 0; k < 3; ++k) std::memcpy(&v[k], p[k] + j, 8);
      for (int k = 0; k < 3; ++k) reg[k] = _mm_crc32_u64(reg[k], v[k]);
    }
    for (; j < step; ++j) {
      for (int k = 0; k < 3; ++k) {
        reg[k] = _mm_crc32_u8(static_cast<uint32_t>(reg[k]), p[k][j]);
      }
    }
    done += step;
  }
  // The third stream goes on to the end.
  uint32_t c = static_cast<uint32_t>(reg[2]);
  for (size_t i = cur[2].i; i < pieces.size(); ++i) {
    const size_t off = i == cur[2].i ? cur[2].off : 0;
    c = Hardware(c, reinterpret_cast<const uint8_t*>(pieces[i].data()) + off,
                 pieces[i].size() - off);
  }
  const uint32_t ab =
      Crc32cCombine(~static_cast<uint32_t>(reg[0]), ~static_cast<uint32_t>(reg[1]), third);
  return Crc32cCombine(ab, ~c, n - 2 * third);
}

bool HasSse42() {
  static const bool has = __builtin_cpu_supports("sse4.2");
  return has;
}
#endif

}  // namespace

uint32_t Crc32cCombine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b) {
  // Pre- and post-inversion cancel out between the two CRCs: the result is
  // crc_a moved past len_b zero bytes, xor crc_b.
  static const ZeroOps* ops = new ZeroOps;
  uint32_t crc = crc_a;
  for (int k = 0; len_b != 0; ++k, len_b >>= 1) {
    if (len_b & 1) crc = Gf2Times(ops->m[k], crc);
  }
  return crc ^ crc_b;
}

uint32_t Crc32cExtend(uint32_t crc, const void* data, size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
#if defined(__x86_64__)
  if (HasSse42()) {
    size_t done = 0;
    // Below 4 KiB the two combines (0.1 µs each) cost more than they save.
    if (n >= 4096) crc = Interleaved(crc, p, n, &done);
    return ~Hardware(~crc, p + done, n - done);
  }
#endif
  return ~Software(~crc, p, n);
}

uint32_t Crc32cExtend(uint32_t crc, const std::vector<absl::string_view>& pieces) {
  size_t n = 0;
  for (absl::string_view p : pieces) n += p.size();
#if defined(__x86_64__)
  if (HasSse42() && n >= 4096 && pieces.size() > 1) return InterleavedPieces(crc, pieces, n);
#endif
  for (absl::string_view p : pieces) crc = Crc32cExtend(crc, p.data(), p.size());
  return crc;
}

}  // namespace raftgrpc
