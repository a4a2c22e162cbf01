// Wire compatibility of raftpb with etcd's raft.proto: hand-computed bytes
// prove the field numbers and wire types; etcd 3.4's own encodings (from
// rafthttp-spec.md section 6.2) must decode and re-encode byte for byte.
#include <cstdint>
#include <string>

#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "proto/raftpb/raft.pb.h"

namespace {

std::string Hex(const std::string& bytes) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

std::string Unhex(const std::string& hex) {
  std::string out;
  std::string digits;
  for (char c : hex) {
    if (c != ' ') digits.push_back(c);
  }
  for (size_t i = 0; i + 1 < digits.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(digits.substr(i, 2), nullptr, 16)));
  }
  return out;
}

raftpb::Message FullMessage(raftpb::MessageType type) {
  raftpb::Message m;
  m.set_type(type);
  m.set_to(0xfffffffffffffffeULL);
  m.set_from(0x8e9e05c52164694dULL);
  m.set_term(7);
  m.set_logterm(6);
  m.set_index(1000);
  for (int i = 0; i < 3; ++i) {
    raftpb::Entry* e = m.add_entries();
    e->set_term(6);
    e->set_index(1001 + i);
    e->set_type(i == 1 ? raftpb::EntryConfChange : raftpb::EntryNormal);
    e->set_data(std::string(10 + i, static_cast<char>('a' + i)));
  }
  m.set_commit(999);
  m.set_vote(3);
  raftpb::Snapshot* s = m.mutable_snapshot();
  s->set_data("snapshot-data");
  s->mutable_metadata()->set_index(900);
  s->mutable_metadata()->set_term(5);
  raftpb::ConfState* cs = s->mutable_metadata()->mutable_conf_state();
  cs->add_voters(1);
  cs->add_voters(2);
  cs->add_learners(3);
  cs->add_voters_outgoing(4);
  cs->add_learners_next(5);
  cs->set_auto_leave(true);
  m.set_reject(true);
  m.set_rejecthint(998);
  m.set_context("ctx");
  *m.add_responses() = raftpb::Message();
  m.mutable_responses(0)->set_type(raftpb::MsgAppResp);
  m.mutable_responses(0)->set_to(2);
  return m;
}

TEST(RaftProtoTest, EveryMessageTypeRoundTripsWithAllFieldsSet) {
  const auto* desc = raftpb::MessageType_descriptor();
  ASSERT_EQ(desc->value_count(), 24);  // MsgHup (0) .. MsgForgetLeader (23)
  for (int i = 0; i < desc->value_count(); ++i) {
    auto type = static_cast<raftpb::MessageType>(desc->value(i)->number());
    raftpb::Message in = FullMessage(type);
    std::string bytes;
    ASSERT_TRUE(in.SerializeToString(&bytes));
    raftpb::Message out;
    ASSERT_TRUE(out.ParseFromString(bytes)) << desc->value(i)->name();
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(in, out))
        << desc->value(i)->name();
    EXPECT_EQ(out.SerializeAsString(), bytes) << desc->value(i)->name();
  }
}

TEST(RaftProtoTest, EnumValuesMatchEtcd) {
  EXPECT_EQ(raftpb::MsgApp, 3);
  EXPECT_EQ(raftpb::MsgSnap, 7);
  EXPECT_EQ(raftpb::MsgHeartbeat, 8);
  EXPECT_EQ(raftpb::MsgPreVoteResp, 18);
  EXPECT_EQ(raftpb::MsgForgetLeader, 23);
  EXPECT_EQ(raftpb::EntryConfChangeV2, 2);
  EXPECT_EQ(raftpb::ConfChangeAddLearnerNode, 3);
  EXPECT_EQ(raftpb::ConfChangeTransitionJointExplicit, 2);
}

// Hand-computed: tag = field << 3 | wire type.
TEST(RaftProtoTest, HeartbeatEncodesWithEtcdFieldNumbers) {
  raftpb::Message m;
  m.set_type(raftpb::MsgHeartbeat);  // field 1 -> 08 08
  m.set_to(2);                       // field 2 -> 10 02
  m.set_from(1);                     // field 3 -> 18 01
  m.set_term(3);                     // field 4 -> 20 03
  m.set_commit(4);                   // field 8 -> 40 04
  EXPECT_EQ(Hex(m.SerializeAsString()), "08081002180120034004");
}

TEST(RaftProtoTest, AppendAndVoteFieldsEncodeWithEtcdFieldNumbers) {
  raftpb::Message m;
  m.set_type(raftpb::MsgApp);
  m.set_logterm(5);                    // field 5 -> 28 05
  m.set_index(300);                    // field 6 -> 30 ac 02
  raftpb::Entry* e = m.add_entries();  // field 7 -> 3a <len>
  e->set_type(raftpb::EntryNormal);    // entry field 1 -> 08 00
  e->set_term(5);                      // entry field 2 -> 10 05
  e->set_index(301);                   // entry field 3 -> 18 ad 02
  e->set_data("x");                    // entry field 4 -> 22 01 78
  m.set_reject(true);                  // field 10 -> 50 01
  m.set_rejecthint(9);                 // field 11 -> 58 09
  m.set_context("c");                  // field 12 -> 62 01 63
  m.set_vote(2);                       // field 13 -> 68 02
  EXPECT_EQ(Hex(m.SerializeAsString()),
            "0803"
            "2805"
            "30ac02"
            "3a0a"
            "0800"
            "1005"
            "18ad02"
            "220178"
            "5001"
            "5809"
            "620163"
            "6802");
}

TEST(RaftProtoTest, ConfTypesEncodeWithEtcdFieldNumbers) {
  raftpb::ConfChange cc;
  cc.set_id(1);                               // field 1
  cc.set_type(raftpb::ConfChangeRemoveNode);  // field 2
  cc.set_node_id(2);                          // field 3
  cc.set_context("z");                        // field 4
  EXPECT_EQ(Hex(cc.SerializeAsString()),
            "0801"
            "1001"
            "1802"
            "22017a");

  raftpb::ConfState cs;  // repeated uint64 stay unpacked, as in etcd
  cs.add_voters(1);
  cs.add_voters(2);
  cs.add_learners_next(3);   // field 4
  cs.set_auto_leave(false);  // field 5, present with zero value
  EXPECT_EQ(Hex(cs.SerializeAsString()),
            "0801"
            "0802"
            "2003"
            "2800");

  raftpb::HardState hs;
  hs.set_term(1);
  hs.set_vote(2);
  hs.set_commit(3);
  EXPECT_EQ(Hex(hs.SerializeAsString()), "080110021803");

  raftpb::ConfChangeV2 v2;
  v2.set_transition(raftpb::ConfChangeTransitionJointImplicit);
  v2.add_changes()->set_node_id(4);
  EXPECT_EQ(Hex(v2.SerializeAsString()),
            "0801"
            "12021004");
}

// etcd 3.4's gogo marshaller writes every non-nullable field even when zero.
// Proto2 presence lets us decode those bytes and re-encode them unchanged.
TEST(RaftProtoTest, Etcd34EncodingsDecodeAndReencodeIdentically) {
  struct Vector {
    const char* name;
    std::string hex;
  } vectors[] = {
      {"MsgHeartbeat{From1 To2 T1 C3}",
       "0808 1002 1801 2001 2800 3000 4003 4a0a 1208 0a02 2800 1000 1800 5000 5800"},
      {"link heartbeat",
       "0808 1000 1800 2000 2800 3000 4000 4a0a 1208 0a02 2800 1000 1800 5000 5800"},
      {"MsgApp{T1 LT1 I0 C0 From1 To2, [E{T1 I1 a}]}",
       "080310021801200128013000 3a09 0800 1001 1801 220161 4000 4a0a 1208 0a02 "
       "2800 1000 1800 5000 5800"},
  };
  for (const auto& v : vectors) {
    std::string bytes = Unhex(v.hex);
    raftpb::Message m;
    ASSERT_TRUE(m.ParseFromString(bytes)) << v.name;
    EXPECT_EQ(Hex(m.SerializeAsString()), Hex(bytes)) << v.name;
  }

  raftpb::Message hb;
  ASSERT_TRUE(hb.ParseFromString(Unhex(vectors[0].hex)));
  EXPECT_EQ(hb.type(), raftpb::MsgHeartbeat);
  EXPECT_EQ(hb.from(), 1u);
  EXPECT_EQ(hb.to(), 2u);
  EXPECT_EQ(hb.term(), 1u);
  EXPECT_EQ(hb.commit(), 3u);
  EXPECT_EQ(Unhex(vectors[0].hex).size(), 30u);

  raftpb::Message app;
  ASSERT_TRUE(app.ParseFromString(Unhex(vectors[2].hex)));
  EXPECT_EQ(app.type(), raftpb::MsgApp);
  EXPECT_EQ(app.logterm(), 1u);
  ASSERT_EQ(app.entries_size(), 1);
  EXPECT_EQ(app.entries(0).index(), 1u);
  EXPECT_EQ(app.entries(0).term(), 1u);
  EXPECT_EQ(app.entries(0).data(), "a");
  EXPECT_EQ(Unhex(vectors[2].hex).size(), 0x29u);
}

// Presence-based encoding of the link heartbeat (etcd main) is 2 bytes.
TEST(RaftProtoTest, LinkHeartbeatPresenceEncodingIsTwoBytes) {
  raftpb::Message m;
  m.set_type(raftpb::MsgHeartbeat);
  EXPECT_EQ(Hex(m.SerializeAsString()), "0808");
}

}  // namespace
