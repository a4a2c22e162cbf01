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
  v1::MsgAppV2Frame frame;
  for (raftpb::Message m : in) enc.Encode(std::move(m), &frame);

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
  v1::MsgAppV2Frame frame;
  enc.Encode(App(0, 0, 0, 5, {{1, "x"}}), &frame);
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

// Recycled frames reuse pooled AppEntries: what is decoded after many
// recycle rounds is exactly what was encoded, with no stale entries.
TEST(MsgAppV2CodecTest, RecycledFramesEncodeExactly) {
  MsgAppV2Encoder enc;
  MsgAppV2Decoder dec(2, 1);
  v1::MsgAppV2Frame frame;
  uint64_t index = 0;
  for (int round = 0; round < 5; ++round) {
    std::vector<raftpb::Message> sent;
    for (int i = 0; i < 10; ++i) {
      // Alternate one and two entries so a reused AppEntries must shrink.
      std::vector<std::pair<uint64_t, std::string>> es;
      for (int k = 0; k < 1 + (i % 2); ++k)
        es.push_back({index + 1 + k, "r" + std::to_string(round)});
      raftpb::Message m = App(1, 1, index, index, es);
      index += es.size();
      sent.push_back(m);
      enc.Encode(std::move(m), &frame);
    }
    ASSERT_EQ(frame.records_size(), 10);
    for (int i = 0; i < 10; ++i) {
      v1::MsgAppV2Record rec = frame.records(i);
      auto got = dec.Decode(std::move(rec));
      ASSERT_TRUE(got.ok()) << got.status();
      EXPECT_EQ(got->SerializeAsString(), sent[i].SerializeAsString()) << round << "/" << i;
    }
    enc.Recycle(&frame);
    EXPECT_EQ(frame.records_size(), 0);
  }
}

// A written frame's small entries are kept, cleared, and handed to the next
// message Encode takes (whose owner, Raft's thread, then frees them); large
// ones (4 KiB) are freed with the frame. Seen through the data buffer's capacity: a
// kept entry comes back with its buffer, a fresh one has none.
TEST(MsgAppV2CodecTest, SmallWrittenEntriesGoBackToTheNextMessage) {
  for (const size_t size : {size_t{128}, size_t{1024}, size_t{4096}}) {
    const bool kept = size <= MsgAppV2Encoder::kMaxKeptBytes;
    MsgAppV2Encoder enc;
    MsgAppV2Decoder dec(2, 1);
    v1::MsgAppV2Frame frame;
    enc.Encode(App(1, 1, 0, 0, {{1, "x"}}), &frame);                     // full
    enc.Encode(App(1, 1, 1, 1, {{2, std::string(size, 'b')}}), &frame);  // compact
    ASSERT_TRUE(frame.records(1).has_app_entries());
    for (const v1::MsgAppV2Record& rec : frame.records()) {
      ASSERT_TRUE(dec.Decode(v1::MsgAppV2Record(rec)).ok());  // the reader's state
    }
    MsgAppV2Encoder::FreeEntries(&frame);
    enc.Recycle(&frame);

    raftpb::Message taken = App(1, 1, 2, 2, {{3, "c"}});
    const raftpb::Message want = taken;
    enc.Encode(std::move(taken), &frame);  // compact: the pooled AppEntries
    // NOLINTNEXTLINE(bugprone-use-after-move): the moved-from message is what is checked
    EXPECT_EQ(taken.entries_size(), 0) << size;
    raftpb::Entry* reused = taken.mutable_entries()->Add();
    EXPECT_TRUE(reused->data().empty()) << size;
    if (kept) {
      EXPECT_GE(reused->data().capacity(), size) << "the written entry's buffer came back";
    } else {
      EXPECT_LT(reused->data().capacity(), size) << "a large entry must not be kept";
    }
    // And the frame carries exactly what was encoded.
    ASSERT_EQ(frame.records_size(), 1);
    ASSERT_TRUE(frame.records(0).has_app_entries());
    auto got = dec.Decode(v1::MsgAppV2Record(frame.records(0)));
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->SerializeAsString(), want.SerializeAsString()) << size;
  }
}

}  // namespace
}  // namespace raftgrpc
