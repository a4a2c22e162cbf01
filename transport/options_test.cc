#include "transport/options.h"

#include "gtest/gtest.h"

namespace raftgrpc {
namespace {

TransportOptions Valid() {
  TransportOptions o;
  o.local_id = 1;
  o.cluster_id = 2;
  return o;
}

TEST(OptionsTest, DefaultsAreEtcds) {
  TransportOptions o = Valid();
  EXPECT_TRUE(o.Validate().ok());
  EXPECT_EQ(o.conn_read_timeout, absl::Seconds(5));
  EXPECT_EQ(o.dial_retry_interval, absl::Milliseconds(100));
  EXPECT_EQ(o.stream_buf_size, 4096u);
  EXPECT_EQ(o.pipeline_buf_size, 64u);
  EXPECT_EQ(o.conn_per_pipeline, 4u);
  EXPECT_EQ(o.recv_buf_size, 4096u);
  EXPECT_EQ(o.max_pending_proposals, 4096u);
}

// 0 keeps gRPC's adaptive window; the bounds are the fixed window's.
TEST(OptionsTest, StreamWindowIsZeroOrWithinItsBounds) {
  for (size_t w : {size_t{0}, size_t{64} << 10, size_t{1} << 30}) {
    TransportOptions o = Valid();
    o.stream_window_bytes = w;
    EXPECT_TRUE(o.Validate().ok()) << w;
  }
}

TEST(OptionsTest, RejectsBadValuesNamingTheField) {
  struct Case {
    const char* field;
    void (*mutate)(TransportOptions&);
  } cases[] = {
      {"local_id", [](TransportOptions& o) { o.local_id = 0; }},
      {"cluster_id", [](TransportOptions& o) { o.cluster_id = 0; }},
      {"conn_read_timeout",
       [](TransportOptions& o) { o.conn_read_timeout = absl::Milliseconds(1); }},
      {"stream_buf_size", [](TransportOptions& o) { o.stream_buf_size = 0; }},
      {"pipeline_buf_size", [](TransportOptions& o) { o.pipeline_buf_size = 0; }},
      {"conn_per_pipeline", [](TransportOptions& o) { o.conn_per_pipeline = 0; }},
      {"max_message_bytes", [](TransportOptions& o) { o.max_message_bytes = 10; }},
      {"stream_window_bytes", [](TransportOptions& o) { o.stream_window_bytes = 1024; }},
      {"stream_window_bytes",
       [](TransportOptions& o) { o.stream_window_bytes = (size_t{1} << 30) + 1; }},
      {"snapshot_chunk_bytes", [](TransportOptions& o) { o.snapshot_chunk_bytes = 0; }},
      {"snapshot_chunk_bytes",
       [](TransportOptions& o) { o.snapshot_chunk_bytes = o.max_message_bytes + 1; }},
      {"snapshot_progress_timeout",
       [](TransportOptions& o) { o.snapshot_progress_timeout = absl::ZeroDuration(); }},
      {"stream_progress_timeout",
       [](TransportOptions& o) { o.stream_progress_timeout = absl::Seconds(1); }},
      {"snapshot_partial_ttl",
       [](TransportOptions& o) { o.snapshot_partial_ttl = absl::ZeroDuration(); }},
  };
  for (const Case& c : cases) {
    TransportOptions o = Valid();
    c.mutate(o);
    absl::Status s = o.Validate();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.field;
    EXPECT_NE(s.message().find(c.field), absl::string_view::npos) << s;
  }
}

}  // namespace
}  // namespace raftgrpc
