#include "proto/testdata/vectors.h"

#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "proto/raftpb/raft.pb.h"
#include "proto/transport.pb.h"
#include "transport/internal/metadata.h"
#include "transport/options.h"
#include "transport/stream/msgappv2_codec.h"

namespace raftgrpc::vectors {
namespace {

std::string Quote(absl::string_view s) { return absl::StrCat("\"", absl::CEscape(s), "\""); }
std::string U64(uint64_t v) { return Quote(absl::StrCat(v)); }  // strings: JSON numbers lose bits
std::string Hex(absl::string_view bytes) { return Quote(absl::BytesToHexString(bytes)); }

// The fields of a message that etcd 3.4's Go types have, plus vote and the
// number of responses (newer fields: a 3.4 node keeps them as unknown).
std::string Fields(const raftpb::Message& m) {
  std::vector<std::string> entries;
  for (const raftpb::Entry& e : m.entries()) {
    entries.push_back(absl::StrCat("{\"Type\": ", e.type(), ", \"Term\": ", U64(e.term()),
                                   ", \"Index\": ", U64(e.index()), ", \"Data\": ", Hex(e.data()),
                                   "}"));
  }
  std::string f = absl::StrCat(
      "{\"type\": ", m.type(), ", \"type_name\": ", Quote(raftpb::MessageType_Name(m.type())),
      ", \"to\": ", U64(m.to()), ", \"from\": ", U64(m.from()), ", \"term\": ", U64(m.term()),
      ", \"logTerm\": ", U64(m.logterm()), ", \"index\": ", U64(m.index()),
      ", \"commit\": ", U64(m.commit()), ", \"reject\": ", m.reject() ? "true" : "false",
      ", \"rejectHint\": ", U64(m.rejecthint()),
      ", \"context\": ", m.has_context() ? Hex(m.context()) : "null", ", \"vote\": ", U64(m.vote()),
      ", \"responses\": ", m.responses_size(), ", \"entries\": [", absl::StrJoin(entries, ", "),
      "]");
  const raftpb::SnapshotMetadata& md = m.snapshot().metadata();
  absl::StrAppend(&f, ", \"snapshot\": {\"index\": ", U64(md.index()),
                  ", \"term\": ", U64(md.term()), ", \"voters\": [",
                  absl::StrJoin(md.conf_state().voters(), ", ",
                                [](std::string* o, uint64_t v) { o->append(U64(v)); }),
                  "], \"learners\": [",
                  absl::StrJoin(md.conf_state().learners(), ", ",
                                [](std::string* o, uint64_t v) { o->append(U64(v)); }),
                  "]}}");
  return f;
}

// Sets every field etcd's gogo marshaller always writes (its non-nullable
// ones, zero or not), so that these bytes are exactly what etcd 3.4 puts
// on the wire: a Go node can check Marshal(Unmarshal(hex)) == hex.
raftpb::Message AsEtcd(raftpb::Message m) {
  m.set_type(m.type());
  m.set_to(m.to());
  m.set_from(m.from());
  m.set_term(m.term());
  m.set_logterm(m.logterm());
  m.set_index(m.index());
  m.set_commit(m.commit());
  m.set_reject(m.reject());
  m.set_rejecthint(m.rejecthint());
  for (raftpb::Entry& e : *m.mutable_entries()) {
    e.set_type(e.type());
    e.set_term(e.term());
    e.set_index(e.index());
  }
  raftpb::SnapshotMetadata* md = m.mutable_snapshot()->mutable_metadata();
  md->set_index(md->index());
  md->set_term(md->term());
  md->mutable_conf_state()->set_auto_leave(md->conf_state().auto_leave());
  for (raftpb::Message& r : *m.mutable_responses()) r = AsEtcd(r);
  return m;
}

std::vector<std::pair<std::string, raftpb::Message>> Messages() {
  std::vector<std::pair<std::string, raftpb::Message>> out;
  out.emplace_back("zero", AsEtcd(raftpb::Message()));
  for (int t = raftpb::MessageType_MIN; t <= raftpb::MessageType_MAX; ++t) {
    if (!raftpb::MessageType_IsValid(t)) continue;
    raftpb::Message m;
    m.set_type(static_cast<raftpb::MessageType>(t));
    m.set_from(1);
    m.set_to(2);
    m.set_term(5 + t);
    m.set_logterm(4);
    m.set_index(1000 + t);
    m.set_commit(990 + t);
    m.set_reject(t % 2 == 0);
    m.set_rejecthint(t);
    if (t % 3 == 0) m.set_context(absl::StrCat("ctx-", t, std::string("\0\xff", 2)));
    if (t == raftpb::MsgApp || t == raftpb::MsgProp) {
      for (int k = 0; k < 3; ++k) {
        raftpb::Entry* e = m.add_entries();
        e->set_term(5);
        e->set_index(1001 + t + k);
        e->set_type(static_cast<raftpb::EntryType>(k));
        if (k != 1) e->set_data(std::string(8 + k, static_cast<char>('a' + k)));
      }
    }
    if (t == raftpb::MsgSnap) {
      raftpb::SnapshotMetadata* md = m.mutable_snapshot()->mutable_metadata();
      md->set_index(77);
      md->set_term(5);
      md->mutable_conf_state()->add_voters(1);
      md->mutable_conf_state()->add_voters(2);
      md->mutable_conf_state()->add_learners(4);
    }
    std::string name = raftpb::MessageType_Name(m.type());
    out.emplace_back(std::move(name), AsEtcd(std::move(m)));
  }
  raftpb::Message big;
  big.set_type(raftpb::MsgHeartbeat);
  big.set_to(std::numeric_limits<uint64_t>::max());
  big.set_from(std::numeric_limits<uint64_t>::max() - 1);
  big.set_term(uint64_t{1} << 63);
  big.set_commit(std::numeric_limits<uint64_t>::max());
  out.emplace_back("max_uint64", AsEtcd(big));
  raftpb::Message vote;  // etcd 3.5+'s vote field: unknown to 3.4, kept
  vote.set_type(raftpb::MsgVoteResp);
  vote.set_from(3);
  vote.set_to(1);
  vote.set_term(9);
  vote.set_vote(3);
  out.emplace_back("vote_field", AsEtcd(vote));
  raftpb::Message resp;  // etcd 3.6's responses field: unknown to 3.4, kept
  resp.set_type(raftpb::MsgReadIndexResp);
  resp.set_from(1);
  resp.set_to(2);
  resp.set_term(3);
  resp.set_index(44);
  resp.set_context("ri");
  raftpb::Message inner = resp;
  *resp.add_responses() = inner;
  out.emplace_back("responses_field", AsEtcd(resp));
  return out;
}

std::string MessagesJson() {
  std::vector<std::string> items;
  for (const auto& [name, m] : Messages()) {
    items.push_back(absl::StrCat("  {\"name\": ", Quote(name), ",\n   \"hex\": ",
                                 Hex(m.SerializeAsString()), ",\n   \"fields\": ", Fields(m), "}"));
  }
  return absl::StrCat(
      "{\"about\": \"raftpb.Message vectors: hex is the message as etcd 3.4 encodes it (every "
      "non-nullable field written); fields describe it (64-bit values as decimal strings, bytes "
      "as hex, context null when absent). Check: decode hex and compare fields; re-encode and "
      "compare bytes. Generated by //proto/testdata:gen_vectors.\",\n \"messages\": [\n",
      absl::StrJoin(items, ",\n"), "\n]}\n");
}

raftpb::Message App(uint64_t from, uint64_t to, uint64_t term, uint64_t logterm, uint64_t index,
                    int entries, uint64_t commit) {
  raftpb::Message m;
  m.set_type(raftpb::MsgApp);
  m.set_from(from);
  m.set_to(to);
  m.set_term(term);
  m.set_logterm(logterm);
  m.set_index(index);
  m.set_commit(commit);
  for (int k = 0; k < entries; ++k) {
    raftpb::Entry* e = m.add_entries();
    e->set_term(term);
    e->set_index(index + 1 + k);
    e->set_type(raftpb::EntryNormal);
    e->set_data(absl::StrCat("e", index + 1 + k));
  }
  return m;
}

std::string Kind(const v1::MsgAppV2Record& r) {
  switch (r.kind_case()) {
    case v1::MsgAppV2Record::kLinkHeartbeat:
      return "link_heartbeat";
    case v1::MsgAppV2Record::kAppEntries:
      return "app_entries";
    case v1::MsgAppV2Record::kApp:
      return "app";
    default:
      return "none";
  }
}

// One v2 sequence: what the sender had, the frame etcd's encoder rules make
// of it (fresh state), and what a fresh decoder makes of that frame.
std::string Sequence(const std::string& name, const std::vector<raftpb::Message>& input) {
  constexpr uint64_t kSender = 1, kReceiver = 2;
  MsgAppV2Encoder enc;
  std::string wire;
  for (raftpb::Message m : input) enc.Encode(m, &wire);
  v1::MsgAppV2Frame frame;
  if (!frame.ParseFromString(wire)) std::abort();
  std::vector<std::string> in, kinds, decoded;
  for (const raftpb::Message& m : input) in.push_back(Hex(m.SerializeAsString()));
  for (const v1::MsgAppV2Record& r : frame.records()) kinds.push_back(Quote(Kind(r)));
  MsgAppV2Decoder dec(kReceiver, kSender);
  v1::MsgAppV2Frame copy = frame;
  for (v1::MsgAppV2Record& r : *copy.mutable_records()) {
    absl::StatusOr<raftpb::Message> m = dec.Decode(std::move(r));
    if (!m.ok()) std::abort();  // the generator's own input is valid
    decoded.push_back(Hex(m->SerializeAsString()));
  }
  return absl::StrCat("  {\"name\": ", Quote(name), ", \"from\": \"1\", \"to\": \"2\",\n",
                      "   \"input\": [", absl::StrJoin(in, ", "), "],\n   \"record_kinds\": [",
                      absl::StrJoin(kinds, ", "), "],\n   \"frame\": ", Hex(wire),
                      ",\n   \"decoded\": [", absl::StrJoin(decoded, ", "), "]}");
}

std::string MsgAppV2Json() {
  raftpb::Message hb;  // the link heartbeat
  hb.set_type(raftpb::MsgHeartbeat);
  std::vector<std::string> seqs = {
      Sequence("single_app", {App(1, 2, 5, 5, 10, 2, 9)}),
      Sequence("app_then_app_entries",
               {App(1, 2, 5, 5, 10, 2, 9), App(1, 2, 5, 5, 12, 1, 11), App(1, 2, 5, 5, 13, 0, 13)}),
      Sequence("heartbeat_between_records",
               {App(1, 2, 5, 5, 10, 2, 9), hb, App(1, 2, 5, 5, 12, 1, 11), hb}),
      Sequence("term_change",
               {App(1, 2, 5, 5, 10, 2, 9), App(1, 2, 6, 5, 12, 1, 12), App(1, 2, 6, 6, 13, 1, 13)}),
      Sequence("app_after_app_entries_index_gap",
               {App(1, 2, 6, 6, 20, 1, 15), App(1, 2, 6, 6, 21, 2, 21), App(1, 2, 6, 6, 40, 1, 22),
                App(1, 2, 6, 6, 41, 1, 41)}),
      Sequence("logterm_differs_from_term",
               {App(1, 2, 7, 7, 50, 1, 49), App(1, 2, 8, 7, 51, 1, 50)}),
      Sequence("first_message_at_zero_state", {App(1, 2, 0, 0, 0, 1, 0)}),
  };
  return absl::StrCat(
      "{\"about\": \"msgappv2 vectors: input is what the sender (member 1) had, each a "
      "serialized raftpb.Message; record_kinds and frame (a serialized MsgAppV2Frame) what "
      "etcd's encoder rules make of it from the zero state; decoded what a fresh decoder at the "
      "receiver (member 2) rebuilds from frame, the link heartbeat included (MsgHeartbeat, from "
      "0, to 0). Compare decoded messages by field, not bytes. Generated by "
      "//proto/testdata:gen_vectors.\",\n \"sequences\": [\n",
      absl::StrJoin(seqs, ",\n"), "\n]}\n");
}

std::string CodeName(grpc::StatusCode c) {
  switch (c) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    default:
      return absl::StrCat(static_cast<int>(c));
  }
}

std::string MetadataJson() {
  TransportOptions opts;
  opts.local_id = 1;
  opts.cluster_id = 0xc1;
  struct Case {
    std::string name;
    std::vector<std::pair<std::string, std::string>> changes;  // value "" drops the key
  };
  const std::vector<Case> cases = {
      {"valid", {}},
      {"version_missing", {{"x-server-version", ""}}},
      {"version_too_old", {{"x-server-version", "2.3.0"}}},
      {"version_3_0", {{"x-server-version", "3.0.0"}}},
      {"version_newer_major", {{"x-server-version", "10.1.0"}}},
      {"version_two_parts", {{"x-server-version", "3.5"}}},
      {"version_prerelease", {{"x-server-version", "3.5.0-rc.1"}}},
      {"version_one_part", {{"x-server-version", "3"}}},
      {"version_words", {{"x-server-version", "three"}}},
      {"version_four_digits", {{"x-server-version", "1234.0.0"}}},
      {"version_sign", {{"x-server-version", "+3.5.0"}}},
      {"min_version_missing", {{"x-min-cluster-version", ""}}},
      {"min_version_equal", {{"x-min-cluster-version", "3.5.0"}}},
      {"min_version_newer_minor", {{"x-min-cluster-version", "3.6.0"}}},
      {"min_version_newer_major", {{"x-min-cluster-version", "99.0.0"}}},
      {"min_version_malformed", {{"x-min-cluster-version", "3.x"}}},
      {"cluster_upper_case", {{"x-etcd-cluster-id", "C1"}}},
      {"cluster_zero_padded", {{"x-etcd-cluster-id", "00c1"}}},
      {"cluster_other", {{"x-etcd-cluster-id", "dead"}}},
      {"cluster_missing", {{"x-etcd-cluster-id", ""}}},
      {"cluster_not_hex", {{"x-etcd-cluster-id", "c1g"}}},
      {"from_missing", {{"x-server-from", ""}}},
      {"from_zero", {{"x-server-from", "0"}}},
      {"from_not_hex", {{"x-server-from", "2x"}}},
      {"from_too_long", {{"x-server-from", "10000000000000000"}}},
      {"from_upper_case", {{"x-server-from", "A"}}},
      {"from_hex_prefix", {{"x-server-from", "0x2"}}},
      {"from_padded_17_digits", {{"x-server-from", "00000000000000002"}}},
      {"from_padded_16_digits", {{"x-server-from", "0000000000000002"}}},
      {"from_space", {{"x-server-from", " 2"}}},
      {"from_underscore", {{"x-server-from", "1_0"}}},
      {"from_max", {{"x-server-from", "ffffffffffffffff"}}},
      {"to_missing", {{"x-raft-to", ""}}},
      {"to_other_member", {{"x-raft-to", "5"}}},
      {"to_not_hex", {{"x-raft-to", "1z"}}},
  };
  std::vector<std::string> items;
  for (const Case& c : cases) {
    std::map<std::string, std::string> md = {{"x-server-from", "2"},
                                             {"x-raft-to", "1"},
                                             {"x-etcd-cluster-id", "c1"},
                                             {"x-server-version", "3.5.0"},
                                             {"x-min-cluster-version", "3.0.0"}};
    for (const auto& [k, v] : c.changes) {
      if (v.empty()) {
        md.erase(k);
      } else {
        md[k] = v;
      }
    }
    ClientMetadata cm;
    for (const auto& [k, v] : md) cm.emplace(grpc::string_ref(k), grpc::string_ref(v));
    RequestIdentity id;
    const grpc::Status s = ValidateIdentity(cm, opts, &id);
    std::vector<std::string> kv;
    for (const auto& [k, v] : md) kv.push_back(absl::StrCat(Quote(k), ": ", Quote(v)));
    items.push_back(absl::StrCat("  {\"name\": ", Quote(c.name), ", \"metadata\": {",
                                 absl::StrJoin(kv, ", "),
                                 "}, \"want\": ", Quote(CodeName(s.error_code())), "}"));
  }
  // The body against the caller (pipeline and snapshot): from must be the
  // caller, to the server.
  std::vector<std::string> bodies;
  for (const auto& [name, from, to] :
       std::vector<std::tuple<std::string, uint64_t, uint64_t>>{{"body_matches", 2, 1},
                                                                {"body_from_other", 5, 1},
                                                                {"body_to_other", 2, 5},
                                                                {"body_from_zero", 0, 1}}) {
    raftpb::Message m;
    m.set_type(raftpb::MsgHeartbeat);
    m.set_from(from);
    m.set_to(to);
    const grpc::Status s = CheckMessageIdentity(m, 2, 1);
    bodies.push_back(
        absl::StrCat("  {\"name\": ", Quote(name), ", \"caller\": \"2\", \"from\": ", U64(from),
                     ", \"to\": ", U64(to), ", \"want\": ", Quote(CodeName(s.error_code())), "}"));
  }
  return absl::StrCat(
      "{\"about\": \"Identity metadata checks every Raft RPC starts with (versions, then "
      "cluster ID, then sender, then the format of x-raft-to if sent; whether it names the server "
      "is "
      "the stream handlers' check), for a server that is member 1 of cluster c1: each case's "
      "metadata and the status code it gets. bodies: a message's from and to against the "
      "caller (pipeline and snapshot). Generated by //proto/testdata:gen_vectors.\",\n"
      " \"server\": {\"id\": \"1\", \"cluster_id\": \"c1\", \"version\": \"3.5.0\", "
      "\"min_cluster_version\": \"3.0.0\"},\n \"cases\": [\n",
      absl::StrJoin(items, ",\n"), "\n],\n \"bodies\": [\n", absl::StrJoin(bodies, ",\n"),
      "\n]}\n");
}

}  // namespace

std::map<std::string, std::string> Generate() {
  return {{"raftpb_messages.json", MessagesJson()},
          {"msgappv2.json", MsgAppV2Json()},
          {"metadata.json", MetadataJson()}};
}

}  // namespace raftgrpc::vectors
