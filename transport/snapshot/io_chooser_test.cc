#include "transport/snapshot/io_chooser.h"

#include "gtest/gtest.h"

namespace raftgrpc {
namespace {

constexpr uint64_t kMiB = 1 << 20;
const IoChooser::Params kSmall{1 * kMiB, 4 * kMiB, 8 * kMiB};

// Feeds windows of 1 MiB, each costing `buffered` or `direct` ns per byte
// by the way the chooser asks for, until `to` MiB; returns the ways used,
// one letter a window ('b', 'd').
std::string Drive(IoChooser& c, uint64_t* at, uint64_t to_mib, double buffered, double direct) {
  std::string ways;
  while (*at < to_mib * kMiB) {
    const bool d = c.Direct();
    ways += d ? 'd' : 'b';
    // In two calls, as a chunk comes in pieces.
    const int64_t ns = static_cast<int64_t>((d ? direct : buffered) * kMiB);
    c.Record(kMiB / 2, ns / 2, *at += kMiB / 2);
    c.Record(kMiB / 2, ns - ns / 2, *at += kMiB / 2);
  }
  return ways;
}

TEST(IoChooserTest, StartsBufferedAndKeepsItWhileItIsCheaper) {
  IoChooser c(kSmall, 0);
  uint64_t at = 0;
  // One probe window of direct at 4 MiB and at every 8 after it.
  EXPECT_EQ(Drive(c, &at, 24, 1.0, 3.0), "bbbbdbbbbbbbbdbbbbbbbbdb");
  EXPECT_EQ(c.probes(), 3);
  EXPECT_FALSE(c.Direct());
}

TEST(IoChooserTest, TakesDirectIoWhenItIsCheaperAndProbesBack) {
  IoChooser c(kSmall, 0);
  uint64_t at = 0;
  EXPECT_EQ(Drive(c, &at, 16, 3.0, 1.0), "bbbbdddddddddbdd");
  EXPECT_TRUE(c.Direct());
  EXPECT_EQ(c.probes(), 2);
}

TEST(IoChooserTest, ATenthIsNotEnoughToSwitch) {
  IoChooser c(kSmall, 0);
  uint64_t at = 0;
  // Direct is 5% cheaper: not worth a switch.
  EXPECT_EQ(Drive(c, &at, 6, 1.0, 0.95), "bbbbdb");
}

TEST(IoChooserTest, AWayThatGetsTwiceAsDearIsProbedAtOnce) {
  IoChooser c(kSmall, 0);
  uint64_t at = 0;
  EXPECT_EQ(Drive(c, &at, 6, 1.0, 3.0), "bbbbdb");  // the probe at 4 MiB
  // From 6 MiB the page cache costs 5x: probed at the first dear window,
  // long before the next probe was due (12 MiB), and left.
  EXPECT_EQ(Drive(c, &at, 10, 5.0, 3.0), "bddd");
  EXPECT_TRUE(c.Direct());
}

TEST(IoChooserTest, AResumedPrefixCountsFromWhereItStarts) {
  IoChooser c(kSmall, 100 * kMiB);
  uint64_t at = 100 * kMiB;
  EXPECT_EQ(Drive(c, &at, 106, 1.0, 3.0), "bbbbdb");
}

TEST(IoChooserTest, RefusedDirectIoStaysBufferedForGood) {
  IoChooser c(kSmall, 0);
  uint64_t at = 0;
  EXPECT_EQ(Drive(c, &at, 4, 3.0, 1.0), "bbbb");
  EXPECT_TRUE(c.Direct());  // the probe
  c.Refused();
  EXPECT_EQ(Drive(c, &at, 30, 9.0, 1.0), std::string(26, 'b'));
  EXPECT_EQ(c.switches(), 1);
}

TEST(IoChooserTest, AClockThatStepsBackCostsNothing) {
  IoChooser c(kSmall, 0);
  uint64_t at = 0;
  for (int i = 0; i < 3; ++i) c.Record(kMiB, 1000, at += kMiB);
  c.Record(kMiB, -5000000, at += kMiB);  // the window at 4 MiB: the probe
  EXPECT_TRUE(c.Direct());
  c.Record(kMiB, 2000000, at += kMiB);  // probe dearer: back to buffered
  EXPECT_FALSE(c.Direct());
}

}  // namespace
}  // namespace raftgrpc
