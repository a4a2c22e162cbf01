// Metrics: counters move as expected for a known workload, and the
// Prometheus text parses (a small parser of the exposition format below).
#include "transport/metrics.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "testing/cluster.h"
#include "testing/messages.h"
#include "testing/snapshot_file.h"
#include "testing/status_macros.h"

namespace raftgrpc {
namespace {

using testing::Cluster;
using testing::WaitUntil;

TEST(HistogramTest, EtcdBucketsAndCumulativeCounts) {
  Histogram rtt = RttHistogram();
  ASSERT_EQ(rtt.bounds().size(), 16u);
  EXPECT_DOUBLE_EQ(rtt.bounds()[0], 0.0001);
  EXPECT_DOUBLE_EQ(rtt.bounds()[15], 0.0001 * 32768);
  Histogram snap = SnapshotHistogram();
  ASSERT_EQ(snap.bounds().size(), 14u);
  EXPECT_DOUBLE_EQ(snap.bounds()[13], 0.1 * 8192);

  Histogram h({1, 2, 4});
  h.Observe(0.5);
  h.Observe(1);  // le: a value on a bound counts in that bucket
  h.Observe(3);
  h.Observe(100);
  EXPECT_EQ(h.CumulativeCount(0), 2u);
  EXPECT_EQ(h.CumulativeCount(1), 2u);
  EXPECT_EQ(h.CumulativeCount(2), 3u);
  EXPECT_EQ(h.count(), 4u);
  EXPECT_DOUBLE_EQ(h.sum(), 104.5);
}

// One parsed sample: family name as written, labels, value.
struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

// Parses Prometheus text format 0.0.4 strictly enough to catch malformed
// output: TYPE before samples, valid names and labels, numeric values, no
// duplicate series, histogram buckets cumulative with +Inf == _count.
::testing::AssertionResult Parse(const std::string& text, std::vector<Sample>* out) {
  std::map<std::string, std::string> types;
  std::set<std::string> series;
  auto valid_name = [](absl::string_view n) {
    if (n.empty() || std::isdigit(static_cast<unsigned char>(n[0]))) return false;
    for (char c : n) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != ':') return false;
    }
    return true;
  };
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    ++line_no;
    auto fail = [&](const std::string& why) {
      return ::testing::AssertionFailure() << "line " << line_no << ": " << why << ": " << line;
    };
    if (absl::ConsumePrefix(&line, "# ")) {
      std::vector<absl::string_view> parts = absl::StrSplit(line, absl::MaxSplits(' ', 2));
      if (parts.size() != 3 || !valid_name(parts[1])) return fail("bad comment");
      if (parts[0] == "TYPE") {
        static const std::set<std::string> kTypes = {"counter", "gauge", "histogram"};
        if (!kTypes.count(std::string(parts[2]))) return fail("bad type");
        if (!types.emplace(std::string(parts[1]), std::string(parts[2])).second) {
          return fail("family declared twice");
        }
      } else if (parts[0] != "HELP") {
        return fail("unknown comment");
      }
      continue;
    }
    Sample s;
    size_t brace = line.find('{');
    size_t close = line.rfind('}');
    if (brace == absl::string_view::npos || close == absl::string_view::npos || close < brace) {
      return fail("no labels");
    }
    s.name = std::string(line.substr(0, brace));
    if (!valid_name(s.name)) return fail("bad name");
    absl::string_view labels = line.substr(brace + 1, close - brace - 1);
    for (absl::string_view kv : absl::StrSplit(labels, ',', absl::SkipEmpty())) {
      std::vector<absl::string_view> p = absl::StrSplit(kv, absl::MaxSplits('=', 1));
      if (p.size() != 2 || !valid_name(p[0]) || p[1].size() < 2 || p[1].front() != '"' ||
          p[1].back() != '"') {
        return fail("bad label");
      }
      s.labels[std::string(p[0])] = std::string(p[1].substr(1, p[1].size() - 2));
    }
    absl::string_view value = line.substr(close + 1);
    if (!absl::ConsumePrefix(&value, " ")) return fail("no value");
    if (value == "+Inf") {
      s.value = INFINITY;
    } else if (!absl::SimpleAtod(value, &s.value)) {
      return fail("bad value");
    }
    std::string family = s.name;
    for (absl::string_view suffix : {"_bucket", "_sum", "_count"}) {
      absl::string_view f = family;
      if (absl::ConsumeSuffix(&f, suffix) && types.count(std::string(f)) &&
          types[std::string(f)] == "histogram") {
        family = std::string(f);
      }
    }
    if (!types.count(family)) return fail("sample before its TYPE");
    if (!series.insert(std::string(line.substr(0, close + 1))).second) return fail("duplicate");
    out->push_back(std::move(s));
  }
  // Histograms: per label set (without le), buckets non-decreasing and +Inf
  // equal to _count.
  std::map<std::string, std::vector<std::pair<double, double>>> buckets;
  std::map<std::string, double> counts;
  auto key = [](const Sample& s, absl::string_view family) {
    std::string k(family);
    for (const auto& [l, v] : s.labels) {
      if (l != "le") k += "," + l + "=" + v;
    }
    return k;
  };
  for (const Sample& s : *out) {
    absl::string_view n = s.name;
    if (absl::ConsumeSuffix(&n, "_bucket")) {
      double le;
      auto it = s.labels.find("le");
      if (it == s.labels.end()) return ::testing::AssertionFailure() << "bucket without le";
      le = it->second == "+Inf" ? INFINITY : std::atof(it->second.c_str());
      buckets[key(s, n)].push_back({le, s.value});
    } else if (absl::ConsumeSuffix(&n, "_count")) {
      counts[key(s, n)] = s.value;
    }
  }
  for (const auto& [k, b] : buckets) {
    for (size_t i = 1; i < b.size(); ++i) {
      if (b[i].first <= b[i - 1].first || b[i].second < b[i - 1].second) {
        return ::testing::AssertionFailure() << "buckets not cumulative: " << k;
      }
    }
    if (b.empty() || !std::isinf(b.back().first) || b.back().second != counts[k]) {
      return ::testing::AssertionFailure() << "+Inf bucket != _count: " << k;
    }
  }
  return ::testing::AssertionSuccess();
}

double Find(const std::vector<Sample>& samples, const std::string& name,
            const std::map<std::string, std::string>& labels) {
  for (const Sample& s : samples) {
    if (s.name == name && s.labels == labels) return s.value;
  }
  return -1;
}

const PeerMetrics* PeerOf(const TransportMetrics& m, uint64_t id) {
  for (const PeerMetrics& p : m.peers) {
    if (p.id == id) return &p;
  }
  return nullptr;
}

raftpb::Message App(uint64_t index, size_t bytes) {
  return testing::App(1, 2, 1, index - 1, std::string(bytes, 'x'));
}

TEST(MetricsTest, KnownWorkloadMovesCountersAndExportParses) {
  TransportOptions o;
  o.probe_interval = absl::Milliseconds(20);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Cluster> c, Cluster::Start(2, o));
  Cluster& cl = *c;
  ASSERT_TRUE(cl.WaitAllStreams());

  constexpr int kApps = 100;
  constexpr size_t kEntry = 1024;
  for (int i = 1; i <= kApps; ++i) cl.t(1).Send(App(i, kEntry));
  ASSERT_TRUE(cl.raft(2).WaitForMessages(kApps));

  // Drops with known reasons.
  raftpb::Message to42 = App(1, 1);
  to42.set_to(42);
  cl.t(1).Send(to42);
  cl.t(1).CutPeer(2);
  cl.t(1).Send(App(kApps + 1, 1));
  cl.t(1).MendPeer(2);

  // A 64 KiB snapshot from a real file.
  const std::string path = std::string(std::getenv("TEST_TMPDIR")) + "/metrics.snap";
  { std::ofstream(path) << std::string(64 * 1024, 's'); }
  auto snap = testing::FileSnapshot(1, 2, 7, path);
  ASSERT_TRUE(snap.ok());
  cl.t(1).SendSnapshot(*std::move(snap));
  ASSERT_TRUE(cl.raft(1).WaitForSnapshotReports(1));
  ASSERT_EQ(cl.raft(1).snapshot_reports()[0].second, SnapshotStatus::kFinish);

  ASSERT_TRUE(WaitUntil([&] {
    const TransportMetrics m = cl.t(1).Metrics();
    const PeerMetrics* p = PeerOf(m, 2);
    return p != nullptr && p->rtt.count() >= 2;
  }));

  TransportMetrics sender = cl.t(1).Metrics();
  const PeerMetrics* to2 = PeerOf(sender, 2);
  ASSERT_NE(to2, nullptr);
  EXPECT_TRUE(to2->is_peer);
  EXPECT_TRUE(to2->active);
  EXPECT_GE(to2->sent_bytes, kApps * kEntry + 64 * 1024);
  EXPECT_EQ(to2->snapshot_send_success, 1u);
  EXPECT_EQ(to2->snapshot_send_failures, 0u);
  EXPECT_EQ(to2->snapshot_send_inflight, 0u);
  EXPECT_EQ(to2->snapshot_send_seconds.count(), 1u);
  EXPECT_EQ(to2->dropped.at("paused"), 1u);
  EXPECT_EQ(sender.dropped.at("unknown_peer"), 1u);
  EXPECT_GE(to2->rtt.count(), 2u);

  // The receiver counts a transfer once its call is fully done.
  ASSERT_TRUE(WaitUntil([&] {
    const TransportMetrics m = cl.t(2).Metrics();
    const PeerMetrics* p = PeerOf(m, 1);
    return p != nullptr && p->snapshot_receive_success == 1;
  }));
  TransportMetrics receiver = cl.t(2).Metrics();
  const PeerMetrics* from1 = PeerOf(receiver, 1);
  ASSERT_NE(from1, nullptr);
  EXPECT_GE(from1->received_bytes, kApps * kEntry + 64 * 1024);
  EXPECT_EQ(from1->received_failures, 0u);
  EXPECT_EQ(from1->snapshot_receive_success, 1u);
  EXPECT_EQ(from1->snapshot_receive_seconds.count(), 1u);
  EXPECT_EQ(from1->snapshot_receive_inflight, 0u);

  std::vector<Sample> samples;
  ASSERT_TRUE(Parse(PrometheusText(sender), &samples));
  EXPECT_EQ(Find(samples, "etcd_network_peer_sent_bytes_total", {{"To", "2"}}),
            static_cast<double>(to2->sent_bytes));
  EXPECT_EQ(Find(samples, "etcd_network_active_peers", {{"Local", "1"}, {"Remote", "2"}}), 1);
  EXPECT_EQ(Find(samples, "etcd_network_snapshot_send_success", {{"To", "2"}}), 1);
  EXPECT_EQ(Find(samples, "etcd_network_peer_round_trip_time_seconds_count", {{"To", "2"}}),
            static_cast<double>(to2->rtt.count()));
  EXPECT_EQ(Find(samples, "raftgrpc_dropped_messages_total", {{"To", "2"}, {"Reason", "paused"}}),
            1);
  EXPECT_EQ(
      Find(samples, "raftgrpc_dropped_messages_total", {{"To", "0"}, {"Reason", "unknown_peer"}}),
      1);

  samples.clear();
  ASSERT_TRUE(Parse(cl.t(2).PrometheusMetrics(), &samples));
  EXPECT_GE(Find(samples, "etcd_network_peer_received_bytes_total", {{"From", "1"}}),
            kApps * kEntry + 64 * 1024.0);
  EXPECT_EQ(Find(samples, "etcd_network_snapshot_receive_success", {{"From", "1"}}), 1);
}

TEST(MetricsTest, ParserRejectsMalformedText) {
  auto parse = [](const std::string& text) {
    std::vector<Sample> s;
    return Parse(text, &s);
  };
  EXPECT_FALSE(parse("x{} 1\n"));                           // no TYPE
  EXPECT_FALSE(parse("# TYPE x counter\nx{a=1} 1\n"));      // unquoted label
  EXPECT_FALSE(parse("# TYPE x counter\nx{} one\n"));       // not a number
  EXPECT_FALSE(parse("# TYPE x counter\nx{} 1\nx{} 2\n"));  // duplicate series
  EXPECT_FALSE(
      parse("# TYPE h histogram\nh_bucket{le=\"1\"} 2\n"
            "h_bucket{le=\"+Inf\"} 1\nh_count{} 1\n"));  // not cumulative
  EXPECT_TRUE(parse("# TYPE x counter\nx{a=\"b\"} 1\n"));
}

}  // namespace
}  // namespace raftgrpc
