#include "transport/stream/msgappv2_codec.h"

#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "testing/messages.h"

namespace raftgrpc {
namespace {

raftpb::Message App(uint64_t term, uint64_t logterm, uint64_t index, uint64_t commit,
                    std::vector<std::pair<uint64_t, std::string>> entries) {
  raftpb::Message m = testing::App(1, 2, term, index, "", /*entries=*/0);
  m.set_logterm(logterm);
  m.set_commit(commit);
  for (auto& [idx, data] : entries) {
    raftpb::Entry* e = m.add_entries();
    e->set_term(term);
    e->set_index(idx);
    e->set_data(data);
  }
  return m;
}

// The records of a frame's wire bytes, which must be exactly what protobuf
// itself writes for the frame they parse to.
v1::MsgAppV2Frame Parse(const std::string& wire) {
  v1::MsgAppV2Frame frame;
  EXPECT_TRUE(frame.ParseFromString(wire));
  EXPECT_EQ(frame.SerializeAsString(), wire);
  return frame;
}

// The sequence of etcd's own msgappv2 test vectors: link heartbeat, a full
// MsgApp (state 0/0 does not match term 1), then two that continue it.
TEST(MsgAppV2CodecTest, EtcdSequenceRoundTripsWithCompactRecords) {
  raftpb::Message link;
  link.set_type(raftpb::MsgHeartbeat);
  std::vector<raftpb::Message> in = {
      link,
      App(1, 1, 0, 0, {{1, "a"}}),
      App(1, 1, 1, 1, {{2, "b"}}),
      App(1, 1, 2, 2, {}),
      App(2, 1, 2, 2, {{3, "c"}}),  // new term: full record again
      App(2, 2, 3, 3, {{4, "d"}, {5, "e"}}),
  };
  MsgAppV2Encoder enc;
  std::string wire;
  for (raftpb::Message m : in) enc.Encode(m, &wire);
  v1::MsgAppV2Frame frame = Parse(wire);

  ASSERT_EQ(frame.records_size(), 6);
  EXPECT_TRUE(frame.records(0).has_link_heartbeat());
  EXPECT_TRUE(frame.records(1).has_app());
  EXPECT_TRUE(frame.records(2).has_app_entries());
  EXPECT_TRUE(frame.records(3).has_app_entries());
  EXPECT_EQ(frame.records(3).app_entries().entries_size(), 0);
  EXPECT_EQ(frame.records(3).app_entries().commit(), 2u);
  EXPECT_TRUE(frame.records(4).has_app());
  EXPECT_TRUE(frame.records(5).has_app_entries());

  MsgAppV2Decoder dec(/*local=*/2, /*remote=*/1);
  for (int i = 0; i < frame.records_size(); ++i) {
    auto out = dec.Decode(std::move(*frame.mutable_records(i)));
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(*out, in[i]))
        << i << ": " << out->ShortDebugString() << " vs " << in[i].ShortDebugString();
  }
}

// etcd's corner case: a first MsgApp with index = logTerm = term = 0 already
// matches the zero state and is sent compact.
TEST(MsgAppV2CodecTest, ZeroFirstMessageIsCompact) {
  MsgAppV2Encoder enc;
  std::string wire;
  raftpb::Message first = App(0, 0, 0, 5, {{1, "x"}});
  enc.Encode(first, &wire);
  v1::MsgAppV2Frame frame = Parse(wire);
  ASSERT_TRUE(frame.records(0).has_app_entries());
  MsgAppV2Decoder dec(2, 1);
  auto m = dec.Decode(std::move(*frame.mutable_records(0)));
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->commit(), 5u);
  EXPECT_EQ(m->from(), 1u);
  EXPECT_EQ(m->to(), 2u);
}

TEST(MsgAppV2CodecTest, RejectsGarbageRecords) {
  MsgAppV2Decoder dec(2, 1);
  EXPECT_EQ(dec.Decode(v1::MsgAppV2Record()).status().code(), absl::StatusCode::kInvalidArgument);
  v1::MsgAppV2Record rec;
  rec.mutable_app()->set_type(raftpb::MsgVote);
  EXPECT_EQ(dec.Decode(std::move(rec)).status().code(), absl::StatusCode::kInvalidArgument);
}

// The writer clears a written frame's bytes and appends the next frame's
// records to them; the encoder's state runs on across frames. What is
// decoded is exactly what was encoded, round after round.
TEST(MsgAppV2CodecTest, ReusedFramesEncodeExactly) {
  MsgAppV2Encoder enc;
  MsgAppV2Decoder dec(2, 1);
  std::string wire;
  uint64_t index = 0;
  for (int round = 0; round < 5; ++round) {
    std::vector<raftpb::Message> sent;
    wire.clear();
    for (int i = 0; i < 10; ++i) {
      // Alternate one and two entries.
      std::vector<std::pair<uint64_t, std::string>> es;
      for (int k = 0; k < 1 + (i % 2); ++k)
        es.push_back({index + 1 + k, "r" + std::to_string(round)});
      raftpb::Message m = App(1, 1, index, index, es);
      index += es.size();
      enc.Encode(m, &wire);
      sent.push_back(std::move(m));
    }
    v1::MsgAppV2Frame frame = Parse(wire);
    ASSERT_EQ(frame.records_size(), 10);
    EXPECT_TRUE(frame.records(0).has_app() == (round == 0)) << round;
    for (int i = 0; i < 10; ++i) {
      auto got = dec.Decode(std::move(*frame.mutable_records(i)));
      ASSERT_TRUE(got.ok()) << got.status();
      EXPECT_EQ(got->SerializeAsString(), sent[i].SerializeAsString()) << round << "/" << i;
    }
  }
}

// Encode serializes the message in place and gives it back as it was, its
// entries the very same objects: the caller's thread, which built them,
// frees them. Full, compact and link-heartbeat records alike, and a record
// larger than a two-byte length (300 KiB).
TEST(MsgAppV2CodecTest, EncodeLeavesTheMessageAsItWas) {
  raftpb::Message link;
  link.set_type(raftpb::MsgHeartbeat);
  std::vector<raftpb::Message> in = {
      App(1, 1, 0, 0, {{1, "a"}}),                                    // full
      App(1, 1, 1, 1, {{2, std::string(300 << 10, 'b')}, {3, "c"}}),  // compact
      link,
  };
  MsgAppV2Encoder enc;
  std::string wire;
  for (raftpb::Message& m : in) {
    const raftpb::Message before = m;
    std::vector<const raftpb::Entry*> objects;
    for (const raftpb::Entry& e : m.entries()) objects.push_back(&e);
    enc.Encode(m, &wire);
    EXPECT_EQ(m.SerializeAsString(), before.SerializeAsString());
    ASSERT_EQ(static_cast<size_t>(m.entries_size()), objects.size());
    for (int i = 0; i < m.entries_size(); ++i) EXPECT_EQ(&m.entries(i), objects[i]);
  }
  v1::MsgAppV2Frame frame = Parse(wire);
  ASSERT_EQ(frame.records_size(), 3);
  EXPECT_TRUE(frame.records(0).has_app());
  EXPECT_TRUE(frame.records(1).has_app_entries());
  EXPECT_TRUE(frame.records(2).has_link_heartbeat());
  MsgAppV2Decoder dec(2, 1);
  for (int i = 0; i < 3; ++i) {
    auto got = dec.Decode(std::move(*frame.mutable_records(i)));
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->SerializeAsString(), in[i].SerializeAsString()) << i;
  }
}

}  // namespace
}  // namespace raftgrpc
