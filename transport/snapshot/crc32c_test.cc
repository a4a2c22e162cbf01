#include "transport/snapshot/crc32c.h"

#include <algorithm>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace raftgrpc {
namespace {

// Standard CRC-32C check values (RFC 3720 appendix B.4 and the "123456789"
// catalogue value).
TEST(Crc32cTest, KnownVectors) {
  EXPECT_EQ(Crc32cExtend(0, "123456789", 9), 0xe3069283u);
  std::string zeros(32, '\0');
  EXPECT_EQ(Crc32cExtend(0, zeros.data(), zeros.size()), 0x8a9136aau);
  std::string ones(32, '\xff');
  EXPECT_EQ(Crc32cExtend(0, ones.data(), ones.size()), 0x62a8ab43u);
  EXPECT_EQ(Crc32cExtend(0, "", 0), 0u);
}

TEST(Crc32cTest, ExtendingInPiecesEqualsWhole) {
  std::string data;
  for (int i = 0; i < 10007; ++i) data.push_back(static_cast<char>(i * 31));
  uint32_t whole = Crc32cExtend(0, data.data(), data.size());
  for (size_t cut : {1u, 7u, 8u, 4096u, 10000u}) {
    uint32_t c = Crc32cExtend(0, data.data(), cut);
    c = Crc32cExtend(c, data.data() + cut, data.size() - cut);
    EXPECT_EQ(c, whole) << cut;
  }
}

// Bit by bit, straight from the definition: the reference for every
// length, whichever path (three streams, one, the table) the code takes.
uint32_t Reference(const std::string& d) {
  uint32_t c = 0xffffffffu;
  for (unsigned char b : d) {
    c ^= b;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1)));
  }
  return ~c;
}

TEST(Crc32cTest, EveryLengthMatchesTheDefinition) {
  std::string data;
  for (int i = 0; i < 70000; ++i) data.push_back(static_cast<char>(i * 7 + (i >> 5)));
  for (size_t n : {0, 1, 7, 8, 9, 4095, 4096, 4097, 4103, 12288, 12289, 65536, 69999}) {
    const std::string d = data.substr(0, n);
    EXPECT_EQ(Crc32cExtend(0, d.data(), d.size()), Reference(d)) << n;
    // From an unaligned start, too.
    const std::string u = data.substr(3, n);
    EXPECT_EQ(Crc32cExtend(0, u.data(), u.size()), Reference(u)) << n;
  }
}

TEST(Crc32cTest, PiecesEqualTheWhole) {
  std::string data;
  for (int i = 0; i < 300000; ++i) data.push_back(static_cast<char>(i * 13 + (i >> 9)));
  // Piece sizes as gRPC's slices come (about 13 KiB), odd ones, empty ones,
  // and a single piece.
  for (std::vector<size_t> sizes : std::vector<std::vector<size_t>>{
           {13000}, {1, 2, 3}, {0, 8191, 0, 1}, {5, 16384}, {100000, 0, 3, 4093, 7}}) {
    for (size_t total : {size_t{0}, size_t{4095}, size_t{4096}, size_t{65537}, data.size()}) {
      std::vector<absl::string_view> pieces;
      for (size_t at = 0, k = 0; at < total; ++k) {
        const size_t len = std::min(sizes[k % sizes.size()], total - at);
        pieces.emplace_back(data.data() + at, len);
        at += len;
        if (k > 1000000) break;
      }
      const uint32_t seed = 0x12345678;
      EXPECT_EQ(Crc32cExtend(seed, pieces), Crc32cExtend(seed, data.data(), total))
          << total << " in pieces of " << sizes[0];
    }
  }
}

TEST(Crc32cTest, CombiningEqualsExtending) {
  std::string data;
  for (int i = 0; i < (1 << 20) + 13; ++i) data.push_back(static_cast<char>(i * 131 + (i >> 7)));
  const uint32_t whole = Crc32cExtend(0, data.data(), data.size());
  for (size_t cut : {size_t{0}, size_t{1}, size_t{8}, size_t{4095}, size_t{1} << 19,
                     data.size() - 1, data.size()}) {
    const uint32_t a = Crc32cExtend(0, data.data(), cut);
    const uint32_t b = Crc32cExtend(0, data.data() + cut, data.size() - cut);
    EXPECT_EQ(Crc32cCombine(a, b, data.size() - cut), whole) << cut;
  }
  // Chunk by chunk, as a snapshot's trailer is built.
  uint32_t c = 0;
  for (size_t off = 0; off < data.size(); off += 65536) {
    const size_t n = std::min<size_t>(65536, data.size() - off);
    c = Crc32cCombine(c, Crc32cExtend(0, data.data() + off, n), n);
  }
  EXPECT_EQ(c, whole);
  // A flipped bit in B changes the result.
  std::string flipped = data;
  flipped[600000] ^= 1;
  const uint32_t a = Crc32cExtend(0, flipped.data(), 1 << 19);
  const uint32_t b = Crc32cExtend(0, flipped.data() + (1 << 19), flipped.size() - (1 << 19));
  EXPECT_NE(Crc32cCombine(a, b, flipped.size() - (1 << 19)), whole);
}

}  // namespace
}  // namespace raftgrpc
