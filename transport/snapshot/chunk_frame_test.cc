#include "transport/snapshot/chunk_frame.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "proto/transport.pb.h"

namespace raftgrpc {
namespace {

// `bytes` cut into slices of `step` bytes, as gRPC may deliver a message.
grpc::ByteBuffer Sliced(const std::string& bytes, size_t step) {
  std::vector<grpc::Slice> slices;
  for (size_t i = 0; i < bytes.size(); i += step) {
    slices.emplace_back(bytes.data() + i, std::min(step, bytes.size() - i));
  }
  return grpc::ByteBuffer(slices.data(), slices.size());
}

std::string Joined(const ChunkFrame& f) {
  std::string s;
  for (const grpc::Slice& p : f.data) s.append(reinterpret_cast<const char*>(p.begin()), p.size());
  return s;
}

std::string Bytes(const grpc::ByteBuffer& b) {
  std::vector<grpc::Slice> slices;
  EXPECT_TRUE(b.Dump(&slices).ok());
  std::string s;
  for (const grpc::Slice& p : slices) s.append(reinterpret_cast<const char*>(p.begin()), p.size());
  return s;
}

TEST(ChunkFrameTest, MakeEncodesAsProtobufAndSplitReadsItBackAcrossAnySlicing) {
  for (size_t size : {0, 1, 127, 128, 300, 16384, 1 << 20}) {
    std::string data(size, '\0');
    for (size_t i = 0; i < size; ++i) data[i] = static_cast<char>(i * 7 + size);
    v1::SnapshotFrame want;
    want.set_chunk(data);
    want.set_chunk_crc32c(0xdeadbeef);
    const std::string wire = Bytes(MakeChunkFrame(grpc::Slice(data), 0xdeadbeef));
    ASSERT_EQ(wire, want.SerializeAsString()) << size;
    for (size_t step : {size_t{1}, size_t{3}, size_t{4096}, wire.size()}) {
      ChunkFrame got;
      ASSERT_TRUE(SplitChunkFrame(Sliced(wire, step), &got)) << size << " " << step;
      EXPECT_EQ(Joined(got), data);
      EXPECT_EQ(got.size, size);
      EXPECT_TRUE(got.has_crc);
      EXPECT_EQ(got.crc, 0xdeadbeefu);
    }
  }
}

TEST(ChunkFrameTest, LastFieldWinsAsInProtobuf) {
  // Two chunks and two checksums, the checksum first: protobuf keeps the
  // last of each.
  const std::string wire = std::string("\x25\x01\x00\x00\x00", 5) +
                           "\x12\x02"
                           "ab" +
                           std::string("\x25\x02\x00\x00\x00", 5) + "\x12\x03xyz";
  v1::SnapshotFrame parsed;
  ASSERT_TRUE(parsed.ParseFromString(wire));
  ChunkFrame got;
  ASSERT_TRUE(SplitChunkFrame(Sliced(wire, 2), &got));
  EXPECT_EQ(Joined(got), parsed.chunk());
  EXPECT_EQ(got.crc, parsed.chunk_crc32c());
  EXPECT_EQ(got.crc, 2u);
}

TEST(ChunkFrameTest, EverythingElseIsLeftToProtobuf) {
  const std::string chunk =
      "\x12\x03"
      "abc";
  const std::vector<std::pair<const char*, std::string>> cases = {
      {"empty frame", ""},
      {"checksum only", std::string("\x25\x01\x02\x03\x04", 5)},
      {"header", std::string("\x0a\x00", 2)},
      {"trailer after the chunk (the frame is a trailer)", chunk + std::string("\x1a\x00", 2)},
      {"unknown field", chunk + "\x28\x01"},
      {"checksum with the wrong wire type", chunk + "\x20\x05"},
      {"length beyond the frame",
       "\x12\x10"
       "abc"},
      {"truncated checksum", chunk + "\x25\x01\x02"},
      {"truncated tag", "\x92"},
      {"length varint beyond 64 bits",
       std::string("\x12\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02", 11)},
  };
  for (const auto& [what, wire] : cases) {
    ChunkFrame got;
    EXPECT_FALSE(SplitChunkFrame(Sliced(wire.empty() ? std::string() : wire, 1), &got)) << what;
  }
}

// Protobuf reads a tag or a length in at most 5 bytes, padded or not; a
// longer varint fails its parse, so the split must not accept it either.
// The first case is what chunk_frame_fuzz found (2026-12-01): a zero
// length padded to 10 bytes, which the split read as an empty chunk.
TEST(ChunkFrameTest, VarintsLongerThanProtobufReadsAreRefused) {
  const std::string crc("\x25\x05\x02\x03\x04", 5);
  const std::vector<std::pair<const char*, std::string>> cases = {
      {"length of 0 in 10 bytes",
       crc + std::string("\x12\x80\x80\x80\x80\x80\x80\x80\x80\x80\x00", 11)},
      {"length of 3 in 6 bytes", std::string("\x12\x83\x80\x80\x80\x80\x00", 7) + "abc"},
      {"chunk tag in 6 bytes", std::string("\x92\x80\x80\x80\x80\x00\x03", 7) + "abc"},
  };
  for (const auto& [what, wire] : cases) {
    v1::SnapshotFrame parsed;
    EXPECT_FALSE(parsed.ParseFromString(wire)) << what << ": protobuf parses it";
    for (size_t step : {size_t{1}, wire.size()}) {
      ChunkFrame got;
      EXPECT_FALSE(SplitChunkFrame(Sliced(wire, step), &got)) << what;
    }
  }
}

TEST(ChunkFrameTest, PaddedVarintsWithinProtobufsLimitsAreRead) {
  // A length of 3 and the chunk's tag, each padded to 5 bytes.
  const std::string wire = std::string("\x92\x80\x80\x80\x00\x83\x80\x80\x80\x00", 10) + "abc";
  v1::SnapshotFrame parsed;
  ASSERT_TRUE(parsed.ParseFromString(wire));
  ChunkFrame got;
  ASSERT_TRUE(SplitChunkFrame(Sliced(wire, 3), &got));
  EXPECT_EQ(Joined(got), parsed.chunk());
  EXPECT_EQ(Joined(got), "abc");
}

}  // namespace
}  // namespace raftgrpc
