// WireBufferPool: msgappv2 frame bytes lent to gRPC without a copy, and
// their capacity back once gRPC lets go of them.
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "transport/stream/server_stream.h"

namespace raftgrpc {
namespace {

TEST(WireBufferPoolTest, LentBytesAreWrittenInPlaceAndComeBackWhenTheLastReferenceGoes) {
  auto pool = std::make_shared<WireBufferPool>(1 << 20, 4 << 20);
  std::string bytes = pool->Take(100 * 1024);
  ASSERT_GE(bytes.capacity(), 100u * 1024);
  for (int i = 0; bytes.size() < 100 * 1024; ++i) bytes.push_back(static_cast<char>('a' + i % 26));
  const std::string want = bytes;
  const char* const at = bytes.data();
  const size_t capacity = bytes.capacity();

  auto lent = std::make_unique<grpc::ByteBuffer>(WireBufferPool::Lend(std::move(bytes), pool));
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(lent->Dump(&slices).ok());
  ASSERT_EQ(slices.size(), 1u);
  // Not copied: the slice is the string's own storage.
  EXPECT_EQ(reinterpret_cast<const char*>(slices[0].begin()), at);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(slices[0].begin()), slices[0].size()), want);

  // gRPC may hold a reference after the write completes: the buffer stays
  // lent while any reference does.
  lent.reset();
  EXPECT_EQ(pool->kept_bytes(), 0u);
  slices.clear();
  EXPECT_EQ(pool->kept_bytes(), capacity);

  // And is used again, cleared, with its capacity.
  std::string again = pool->Take(100 * 1024);
  EXPECT_EQ(again.data(), at);
  EXPECT_TRUE(again.empty());
  EXPECT_EQ(pool->kept_bytes(), 0u);
}

TEST(WireBufferPoolTest, KeepsNoLargeBufferAndNoMoreThanItsBound) {
  auto pool = std::make_shared<WireBufferPool>(/*keep_capacity=*/64 * 1024,
                                               /*max_kept_bytes=*/160 * 1024);
  std::string big;
  big.reserve(65 * 1024);  // one large message's frame
  pool->Give(std::move(big));
  EXPECT_EQ(pool->kept_bytes(), 0u);

  size_t kept = 0;
  for (int i = 0; i < 4; ++i) {
    std::string b;
    b.reserve(60 * 1024);
    const size_t c = b.capacity();
    pool->Give(std::move(b));
    if (kept + c <= 160 * 1024) kept += c;
  }
  EXPECT_EQ(pool->kept_bytes(), kept);
  EXPECT_LE(pool->kept_bytes(), 160u * 1024);
  EXPECT_GE(pool->kept_bytes(), 120u * 1024);  // two of them
}

TEST(WireBufferPoolTest, BytesLentWithoutAPoolAreFreed) {
  // ASan checks that the bytes are freed exactly once.
  grpc::ByteBuffer b = WireBufferPool::Lend(std::string(5000, 'x'), nullptr);
  EXPECT_EQ(b.Length(), 5000u);
}

}  // namespace
}  // namespace raftgrpc
