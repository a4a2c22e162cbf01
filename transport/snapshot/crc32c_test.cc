#include "transport/snapshot/crc32c.h"

#include <string>

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

}  // namespace
}  // namespace raftgrpc
