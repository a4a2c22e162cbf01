#include "transport/internal/wire.h"

#include "gtest/gtest.h"

namespace raftgrpc {
namespace {

TEST(WireTest, FormatIdIsLowerHexWithoutPadding) {
  EXPECT_EQ(FormatId(0), "0");
  EXPECT_EQ(FormatId(1), "1");
  EXPECT_EQ(FormatId(0xabc), "abc");
  EXPECT_EQ(FormatId(0x8e9e05c52164694dULL), "8e9e05c52164694d");
  EXPECT_EQ(FormatId(~0ULL), "ffffffffffffffff");
}

TEST(WireTest, ParseIdRoundTripsAndRejectsGarbage) {
  for (uint64_t id : {0ULL, 1ULL, 0x10ULL, 0x8e9e05c52164694dULL, ~0ULL}) {
    EXPECT_EQ(ParseId(FormatId(id)), id);
  }
  EXPECT_EQ(ParseId("ABC"), 0xabcu);
  EXPECT_EQ(ParseId(""), std::nullopt);
  EXPECT_EQ(ParseId("xyz"), std::nullopt);
  EXPECT_EQ(ParseId("-1"), std::nullopt);
  EXPECT_EQ(ParseId("1ffffffffffffffff"), std::nullopt);  // 17 digits overflows
}

}  // namespace
}  // namespace raftgrpc
