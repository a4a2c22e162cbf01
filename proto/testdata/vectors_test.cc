// The checked-in vectors are what the C++ code produces today, and every
// message vector round-trips through C++ byte for byte.
#include "proto/testdata/vectors.h"

#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "proto/raftpb/raft.pb.h"
#include "proto/transport.pb.h"

namespace raftgrpc::vectors {
namespace {

std::string Checked(const std::string& name) {
  std::ifstream in(
      absl::StrCat(std::getenv("TEST_SRCDIR"), "/raft_grpc_transport/proto/testdata/", name),
      std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(VectorsTest, CheckedInFilesAreWhatTheCodeProduces) {
  for (const auto& [name, text] : Generate()) {
    EXPECT_EQ(Checked(name), text)
        << name << " drifted: bazel run //proto/testdata:gen_vectors -- $PWD/proto/testdata";
  }
}

TEST(VectorsTest, MessagesRoundTripByteForByte) {
  const std::string text = Checked("raftpb_messages.json");
  const std::regex hex("\"hex\": \"([0-9a-f]*)\"");
  int n = 0;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), hex); it != std::sregex_iterator();
       ++it, ++n) {
    const std::string bytes = absl::HexStringToBytes((*it)[1].str());
    raftpb::Message m;
    ASSERT_TRUE(m.ParseFromString(bytes)) << (*it)[1];
    EXPECT_EQ(m.SerializeAsString(), bytes) << m.ShortDebugString();
  }
  EXPECT_GE(n, 25);
}

TEST(VectorsTest, FramesParse) {
  const std::string text = Checked("msgappv2.json");
  const std::regex frame("\"frame\": \"([0-9a-f]*)\"");
  int n = 0;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), frame);
       it != std::sregex_iterator(); ++it, ++n) {
    v1::MsgAppV2Frame f;
    ASSERT_TRUE(f.ParseFromString(absl::HexStringToBytes((*it)[1].str())));
    EXPECT_GT(f.records_size(), 0);
  }
  EXPECT_EQ(n, 7);
}

}  // namespace
}  // namespace raftgrpc::vectors
