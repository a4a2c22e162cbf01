// A C++ node and the Python node (py_node.py, python3-grpcio, stubs
// generated from proto/ at test time) against each other: every message,
// byte for byte, both directions; a snapshot; probes; a wrong cluster ID.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "peer/peer.h"
#include "testing/child_process.h"
#include "testing/cluster.h"
#include "testing/fake_raft.h"
#include "transport/pipeline/prober.h"
#include "transport/transport.h"

namespace raftgrpc {
namespace {

using testing::FakeRaft;
using testing::WaitUntil;

constexpr uint64_t kClusterId = 0xc1u;

std::string Runfile(const std::string& rel) {
  return absl::StrCat(std::getenv("TEST_SRCDIR"), "/raft_grpc_transport/", rel);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Length-prefixed (4-byte big-endian) serialized messages, as py_node.py.
void WriteRecords(const std::string& path, const std::vector<std::string>& blobs) {
  std::ofstream out(path, std::ios::binary);
  for (const std::string& b : blobs) {
    const uint32_t n = static_cast<uint32_t>(b.size());
    const char len[4] = {char(n >> 24), char(n >> 16), char(n >> 8), char(n)};
    out.write(len, 4);
    out.write(b.data(), b.size());
  }
}

std::vector<std::string> ReadRecords(const std::string& path) {
  const std::string data = ReadFile(path);
  std::vector<std::string> out;
  size_t i = 0;
  while (i + 4 <= data.size()) {
    const auto* p = reinterpret_cast<const unsigned char*>(data.data() + i);
    const size_t n = (size_t(p[0]) << 24) | (size_t(p[1]) << 16) | (size_t(p[2]) << 8) | p[3];
    out.push_back(data.substr(i + 4, n));
    i += 4 + n;
  }
  return out;
}

// Every message type the enum has, with every scalar field set, and
// entries, a snapshot and a response where they make sense.
std::vector<raftpb::Message> EveryMessage() {
  std::vector<raftpb::Message> out;
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
    m.set_vote(t % 3);
    m.set_reject(t % 2 == 0);
    m.set_rejecthint(t);
    m.set_context(absl::StrCat("ctx-", t, std::string("\0\xff", 2)));
    for (int k = 0; k < 2; ++k) {
      raftpb::Entry* e = m.add_entries();
      e->set_term(5);
      e->set_index(1001 + t + k);
      e->set_type(k ? raftpb::EntryConfChangeV2 : raftpb::EntryNormal);
      e->set_data(std::string(16 + t, static_cast<char>('a' + k)));
    }
    if (t == raftpb::MsgSnap) {
      raftpb::SnapshotMetadata* md = m.mutable_snapshot()->mutable_metadata();
      md->set_index(77);
      md->set_term(5);
      md->mutable_conf_state()->add_voters(1);
      md->mutable_conf_state()->add_learners(4);
    }
    if (t == raftpb::MsgReadIndexResp) *m.add_responses() = raftpb::Message(m);
    out.push_back(std::move(m));
  }
  return out;
}

bool PythonGrpcAvailable() {
  return std::system("/usr/bin/python3 -c 'import grpc, google.protobuf' >/dev/null 2>&1") == 0 &&
         access("/usr/bin/grpc_python_plugin", X_OK) == 0;
}

TEST(InteropTest, PythonNodeAndCppNodeExchangeEverything) {
  if (!PythonGrpcAvailable()) {
    GTEST_SKIP() << "python3-grpcio / grpc_python_plugin not installed (./bazelw installs "
                    "python3-grpcio and protobuf-compiler-grpc): interop NOT checked";
  }
  const std::string work = absl::StrCat(std::getenv("TEST_TMPDIR"), "/interop");
  const std::string stubs = work + "/stubs";
  ASSERT_EQ(std::system(absl::StrCat("mkdir -p ", stubs).c_str()), 0);
  // Stubs from the same .proto files the C++ node is built from.
  ASSERT_EQ(std::system(absl::StrCat("cd ", Runfile(""), " && protoc -I. --python_out=", stubs,
                                     " --grpc_out=", stubs,
                                     " --plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin"
                                     " proto/raftpb/raft.proto proto/transport.proto")
                            .c_str()),
            0);

  FakeRaft raft;
  TransportOptions o;
  o.local_id = 1;
  o.cluster_id = kClusterId;
  o.snapshot_dir = work + "/snap";
  o.probe_interval = absl::Milliseconds(50);
  auto t = Transport::Create(o, &raft);
  ASSERT_TRUE(t.ok()) << t.status();
  auto port = (*t)->Serve("127.0.0.1:0");
  ASSERT_TRUE(port.ok());

  std::vector<std::string> to_py;
  for (const raftpb::Message& m : EveryMessage()) to_py.push_back(m.SerializeAsString());
  WriteRecords(work + "/cpp_to_py.bin", to_py);

  testing::ChildProcess py;
  ASSERT_TRUE(py.Start({"/usr/bin/python3", Runfile("testing/interop/py_node.py"),
                        absl::StrCat("--cpp-port=", *port),
                        absl::StrCat("--cluster-id=", absl::Hex(kClusterId)), "--workdir=" + work,
                        "--stubs=" + stubs}));
  const std::string port_line = py.ReadLine();
  ASSERT_TRUE(absl::StartsWith(port_line, "PORT ")) << "python: " << port_line;
  ASSERT_TRUE((*t)->AddPeer(2, {"http://127.0.0.1:" + port_line.substr(5)}).ok());
  ASSERT_TRUE(py.WriteLine("GO"));

  // Python dials our v3 stream; once attached, everything goes out.
  std::shared_ptr<Peer> peer = (*t)->GetPeer(2);
  ASSERT_TRUE(
      WaitUntil([&] { return peer->writer(StreamType::kMessage)->Working(); }, absl::Seconds(30)));
  for (const raftpb::Message& m : EveryMessage()) (*t)->Send(m);

  const std::string result = py.ReadLine();
  EXPECT_EQ(result, "RESULT ok");
  EXPECT_EQ(py.Wait(), 0);

  // Python -> C++: the pipeline messages and the snapshot's MsgSnap, byte
  // for byte (the two inbound lanes may interleave: compare sorted).
  std::vector<std::string> want = ReadRecords(work + "/py_to_cpp.bin");
  ASSERT_GE(want.size(), 2u);
  ASSERT_TRUE(raft.WaitForMessages(want.size()));
  std::vector<std::string> got;
  for (const raftpb::Message& m : raft.messages()) got.push_back(m.SerializeAsString());
  std::sort(want.begin(), want.end());
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, want);
  ASSERT_EQ(raft.snapshot_paths().size(), 1u);
  EXPECT_EQ(ReadFile(raft.snapshot_paths()[0]), ReadFile(work + "/py_snapshot.data"));
  // py_node.py checked that we probed it (at least twice).
  EXPECT_GE((*t)->GetProber(2)->stats().probes, 2u);
  (*t)->Stop();
}

}  // namespace
}  // namespace raftgrpc
