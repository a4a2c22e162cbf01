#include "testing/fuzz/fuzz_node.h"

#include <dirent.h>
#include <stdlib.h>

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "testing/fake_raft.h"
#include "transport/internal/metadata.h"
#include "transport/transport.h"

namespace raftgrpc::fuzz {

FuzzNode& GetFuzzNode() {
  static FuzzNode* node = [] {
    auto* n = new FuzzNode;
    std::string tmpl = "/tmp/raftgrpc-fuzz-XXXXXX";
    if (const char* t = std::getenv("TEST_TMPDIR")) tmpl = absl::StrCat(t, "/fuzz-XXXXXX");
    n->snapshot_dir = mkdtemp(&tmpl[0]);
    auto* raft = new testing::FakeRaft;  // leaked on purpose: lives until exit
    raft->set_keep_messages(false);
    raft->SetRemoved(3);
    TransportOptions o;
    o.local_id = 1;
    o.cluster_id = 0x1000;
    o.snapshot_dir = n->snapshot_dir;
    o.max_message_bytes = 64 * 1024;  // small limits reach the size checks
    o.snapshot_chunk_bytes = 16 * 1024;
    o.log = [](const std::string&) {};
    auto t = Transport::Create(o, raft);
    if (!t.ok()) {
      std::fprintf(stderr, "fuzz node: %s\n", t.status().ToString().c_str());
      std::abort();
    }
    auto port = (*t)->Serve("127.0.0.1:0");
    if (!port.ok()) {
      std::fprintf(stderr, "fuzz node: %s\n", port.status().ToString().c_str());
      std::abort();
    }
    (void)(*t)->AddPeer(2, {"http://127.0.0.1:1"});  // never dialled successfully
    n->transport = t->release();                     // lives until exit, serving
    // Stopped at exit, so that every thread it started is joined (TSan
    // reports finished threads nobody joined).
    std::atexit([] { GetFuzzNode().transport->Stop(); });
    n->stub = v1::RaftTransport::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", *port), grpc::InsecureChannelCredentials()));
    return n;
  }();
  return *node;
}

void AddFuzzIdentity(grpc::ClientContext* ctx, uint8_t selector) {
  TransportOptions o;
  o.cluster_id = 0x1000;
  switch (selector % 4) {
    case 0:
      o.local_id = 2;
      break;  // the peer
    case 1:
      o.local_id = 9;
      break;  // unknown sender
    case 2:
      o.local_id = 3;
      break;  // removed member
    default:
      o.local_id = 2;
      o.cluster_id = 0xbad;
      break;
  }
  AddIdentityMetadata(ctx, o, 1);
}

uint64_t SnapshotsInFlight() {
  uint64_t n = 0;
  for (const PeerMetrics& p : GetFuzzNode().transport->Metrics().peers) {
    n += p.snapshot_receive_inflight;
  }
  return n;
}

uint64_t SnapshotsAnswered() {
  const TransportCounters s = GetFuzzNode().transport->Metrics().totals;
  return s.snapshots_received + s.snapshots_rejected;
}

int CountSnapshotFiles() {
  int n = 0;
  if (DIR* d = opendir(GetFuzzNode().snapshot_dir.c_str())) {
    while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
    closedir(d);
  }
  return n;
}

}  // namespace raftgrpc::fuzz
