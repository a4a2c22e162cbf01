// Writes the seed corpora (testing/fuzz/corpus/<target>/) used by the
// fuzzers and replayed by the normal tests. Run after changing a format:
//   ./bazelw run //testing/fuzz:make_seeds -- $PWD/testing/fuzz/corpus
#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "proto/transport.pb.h"
#include "testing/messages.h"
#include "transport/internal/metadata.h"
#include "transport/snapshot/crc32c.h"

namespace {

std::string root;

void Write(const std::string& target, const std::string& name, const std::string& bytes) {
  const std::string dir = root + "/" + target;
  mkdir(dir.c_str(), 0755);
  std::ofstream(dir + "/" + name, std::ios::binary) << bytes;
}

raftpb::Message App(uint64_t index, int entries) {
  raftpb::Message m = raftgrpc::testing::App(2, 1, 3, index, "entry", entries);
  m.set_commit(index);
  return m;
}

std::string Framed(const raftgrpc::v1::SnapshotFrame& f) {
  const std::string b = f.SerializeAsString();
  return std::string{char(b.size() >> 8), char(b.size() & 0xff)} + b;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) return std::fprintf(stderr, "usage: make_seeds DIR\n"), 2;
  root = argv[1];
  mkdir(root.c_str(), 0755);

  // stream_frame_fuzz: byte 0 even -> v3, odd -> v2.
  raftgrpc::v1::MessageFrame v3;
  raftpb::Message hb;
  hb.set_type(raftpb::MsgHeartbeat);
  hb.set_from(2);
  hb.set_to(1);
  hb.set_commit(5);
  *v3.add_messages() = hb;
  *v3.add_messages() = App(10, 2);
  raftpb::Message snap;
  snap.set_type(raftpb::MsgSnap);
  snap.mutable_snapshot()->mutable_metadata()->set_index(9);
  *v3.add_messages() = snap;
  Write("stream_frame_fuzz", "v3_mixed", std::string(1, '\0') + v3.SerializeAsString());
  Write("stream_frame_fuzz", "v3_empty", std::string(1, '\0'));
  raftgrpc::v1::MsgAppV2Frame v2;
  *v2.add_records()->mutable_app() = App(10, 2);
  auto* ae = v2.add_records()->mutable_app_entries();
  ae->set_commit(12);
  *ae->add_entries() = App(12, 1).entries(0);
  v2.add_records()->mutable_link_heartbeat();
  Write("stream_frame_fuzz", "v2_full_then_entries", std::string(1, '\1') + v2.SerializeAsString());

  // metadata_fuzz: key:value lines.
  Write("metadata_fuzz", "valid",
        "x-server-from:2\nx-raft-to:1\nx-etcd-cluster-id:1000\nx-server-version:3.5.0\n"
        "x-min-cluster-version:3.0.0\nx-peerurls:http://127.0.0.1:2380\n");
  Write("metadata_fuzz", "wrong_cluster", "x-server-from:2\nx-etcd-cluster-id:bad\n");
  Write("metadata_fuzz", "old_version",
        "x-server-from:2\nx-etcd-cluster-id:1000\nx-server-version:1.0.0\n");

  // pipeline_fuzz: identity selector, then a PipelineRequest.
  raftgrpc::v1::PipelineRequest req;
  *req.mutable_message() = hb;
  for (char sel = 0; sel < 4; ++sel) {
    Write("pipeline_fuzz", absl::StrCat("heartbeat_identity", int(sel)),
          std::string(1, sel) + req.SerializeAsString());
  }
  *req.mutable_message() = App(20, 3);
  req.mutable_message()->set_type(raftpb::MsgProp);
  Write("pipeline_fuzz", "proposal", std::string(1, '\0') + req.SerializeAsString());
  Write("pipeline_fuzz", "no_message", std::string(1, '\0'));

  // snapshot_fuzz: selector, then length-prefixed frames.
  raftgrpc::v1::SnapshotFrame header, chunk, trailer;
  snap.set_from(2);
  snap.set_to(1);
  *header.mutable_header()->mutable_message() = snap;
  header.mutable_header()->set_data_size(10);
  chunk.set_chunk("0123456789");
  trailer.mutable_trailer()->set_crc32c(raftgrpc::Crc32cExtend(0, "0123456789", 10));
  Write("snapshot_fuzz", "valid",
        std::string(1, '\0') + Framed(header) + Framed(chunk) + Framed(trailer));
  Write("snapshot_fuzz", "truncated", std::string(1, '\0') + Framed(header) + Framed(chunk));
  raftgrpc::v1::SnapshotFrame bad = trailer;
  bad.mutable_trailer()->set_crc32c(1);
  Write("snapshot_fuzz", "bad_crc",
        std::string(1, '\0') + Framed(header) + Framed(chunk) + Framed(bad));
  Write("snapshot_fuzz", "chunk_first", std::string(1, '\0') + Framed(chunk) + Framed(trailer));
  Write("snapshot_fuzz", "removed_sender", std::string(1, '\2') + Framed(header));
  Write("snapshot_fuzz", "cancelled", std::string(1, '\x80') + Framed(header) + Framed(chunk));
  std::printf("seeds written to %s\n", root.c_str());
  return 0;
}
