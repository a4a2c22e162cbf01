#include "peer/url_picker.h"

#include "gtest/gtest.h"

namespace raftgrpc {
namespace {

TEST(UrlPickerTest, PicksSortedFirstAndRotatesOnlyFromCurrent) {
  UrlPicker p({"http://c:3", "http://a:1", "http://b:2"});
  EXPECT_EQ(p.Pick(), "http://a:1");
  EXPECT_EQ(p.Pick(), "http://a:1");  // stable until told otherwise
  p.Unreachable("http://b:2");        // not the current one: no change
  EXPECT_EQ(p.Pick(), "http://a:1");
  p.Unreachable("http://a:1");
  EXPECT_EQ(p.Pick(), "http://b:2");
  p.Unreachable("http://a:1");  // a second report of the same failure
  EXPECT_EQ(p.Pick(), "http://b:2");
  p.Unreachable("http://b:2");
  EXPECT_EQ(p.Pick(), "http://c:3");
  p.Unreachable("http://c:3");
  EXPECT_EQ(p.Pick(), "http://a:1");  // wraps around
}

TEST(UrlPickerTest, UpdateReplacesAndResets) {
  UrlPicker p({"http://a:1", "http://b:2"});
  p.Unreachable("http://a:1");
  EXPECT_EQ(p.Pick(), "http://b:2");
  p.Update({"http://z:9", "http://y:8"});
  EXPECT_EQ(p.Pick(), "http://y:8");
  EXPECT_EQ(p.urls(), (std::vector<std::string>{"http://y:8", "http://z:9"}));
}

TEST(UrlPickerTest, ValidatesLikeEtcd) {
  auto ok = ValidatePeerUrls({"https://10.0.0.2:2380", "http://[::1]:2380", "http://h:1"});
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->front(), "http://[::1]:2380");
  for (const char* bad :
       {"10.0.0.1:2380", "ftp://a:1", "http://a", "http://a:0", "http://a:99999", "http://a:1/path",
        "http://u@a:1", "http://:1", "http://::1:5", "http://a:x"}) {
    auto s = ValidatePeerUrls({bad});
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(s.status().message().find(bad), std::string::npos) << s.status();
  }
  EXPECT_EQ(ValidatePeerUrls({}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(GrpcTarget("https://10.0.0.2:2380"), "10.0.0.2:2380");
  EXPECT_EQ(GrpcTarget("http://[::1]:7"), "[::1]:7");
}

}  // namespace
}  // namespace raftgrpc
