// The conformance runner: runs the cases of proto/CONFORMANCE.md against a
// node under test and prints one line per case ("PASS name ..." or
// "FAIL name: why"), then a summary; exits 1 if any case failed.
//
//   runner --server=HOST:PORT --listen=HOST:PORT [--cases=all|a,b] ...
//     against a node that is already running, configured with the runner
//     (member --runner-id) at --listen as its peer;
//   runner --exec='NODE ARGS... {RUNNER} ... {DIR}' [--cases=...]
//     starts the node itself: {RUNNER} becomes the runner's address,
//     {DIR} a fresh directory; the node prints "PORT <n>" when it serves
//     and stops when its stdin closes.
//
// Other flags (hex IDs): --server-id=1 --runner-id=2 --cluster-id=c1
// --removed-id=3 --unknown-id=99 --require-resume (fail, rather than pass
// as optional, if the node answers SnapshotOffset with UNIMPLEMENTED or
// keeps nothing). --list prints the case names.
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "google/protobuf/util/message_differencer.h"
#include "grpcpp/grpcpp.h"
#include "proto/transport.grpc.pb.h"
#include "testing/child_process.h"
#include "transport/snapshot/crc32c.h"
#include "transport/stream/msgappv2_codec.h"

namespace raftgrpc::conformance {
namespace {

using google::protobuf::util::MessageDifferencer;

struct Config {
  std::string server;
  std::string listen = "127.0.0.1:0";
  std::string exec;
  uint64_t server_id = 1;
  uint64_t runner_id = 2;
  uint64_t cluster = 0xc1;
  uint64_t removed = 3;
  uint64_t unknown = 0x99;
  std::vector<std::string> cases;  // empty: all
  bool require_resume = false;
  bool list = false;
  absl::Duration timeout = absl::Seconds(10);
};

std::string Hex(uint64_t v) { return absl::StrCat(absl::Hex(v)); }

std::string CodeName(grpc::StatusCode c) {
  static const char* kNames[] = {"OK",
                                 "CANCELLED",
                                 "UNKNOWN",
                                 "INVALID_ARGUMENT",
                                 "DEADLINE_EXCEEDED",
                                 "NOT_FOUND",
                                 "ALREADY_EXISTS",
                                 "PERMISSION_DENIED",
                                 "RESOURCE_EXHAUSTED",
                                 "FAILED_PRECONDITION",
                                 "ABORTED",
                                 "OUT_OF_RANGE",
                                 "UNIMPLEMENTED",
                                 "INTERNAL",
                                 "UNAVAILABLE",
                                 "DATA_LOSS",
                                 "UNAUTHENTICATED"};
  const int i = static_cast<int>(c);
  return i >= 0 && i <= 16 ? kNames[i] : absl::StrCat("code ", i);
}

std::string Describe(const grpc::Status& s) {
  return s.ok() ? "OK" : absl::StrCat(CodeName(s.error_code()), " \"", s.error_message(), "\"");
}

bool IsLinkHeartbeat(const raftpb::Message& m) {
  return m.type() == raftpb::MsgHeartbeat && m.from() == 0 && m.to() == 0;
}

// Field equality, a field left unset equal to one set to its default:
// gogo (etcd's Go types) writes every non-nullable field, C++ only those set.
bool Same(const raftpb::Message& a, const raftpb::Message& b) {
  return MessageDifferencer::Equivalent(a, b);
}

raftpb::Message Swapped(raftpb::Message m) {
  const uint64_t f = m.from();
  m.set_from(m.to());
  m.set_to(f);
  return m;
}

std::string Short(const raftpb::Message& m) {
  std::string s = m.ShortDebugString();
  return s.size() > 160 ? s.substr(0, 160) + "..." : s;
}

// Everything the node sent the runner, with the channel it came by.
struct Arrival {
  std::string via;
  raftpb::Message m;
};

class Inbox {
 public:
  void Add(const std::string& via, raftpb::Message m) {
    std::lock_guard<std::mutex> l(mu_);
    items_.push_back({via, std::move(m)});
    cv_.notify_all();
  }
  // Waits until each of `want` matches a distinct arrival that came by
  // `via` ("": any channel); returns the ones still unmatched at `deadline`.
  std::vector<raftpb::Message> WaitAll(const std::vector<raftpb::Message>& want,
                                       const std::string& via, absl::Time deadline) {
    std::unique_lock<std::mutex> l(mu_);
    std::vector<raftpb::Message> missing;
    while (true) {
      missing.clear();
      std::vector<bool> used(items_.size(), false);
      for (const raftpb::Message& w : want) {
        bool found = false;
        for (size_t i = 0; i < items_.size() && !found; ++i) {
          if (!used[i] && (via.empty() || items_[i].via == via) && Same(items_[i].m, w))
            used[i] = found = true;
        }
        if (!found) missing.push_back(w);
      }
      if (missing.empty() || absl::Now() >= deadline) return missing;
      cv_.wait_for(l, std::chrono::milliseconds(
                          std::max<int64_t>(1, absl::ToInt64Milliseconds(deadline - absl::Now()))));
    }
  }
  std::vector<Arrival> All() {
    std::lock_guard<std::mutex> l(mu_);
    return items_;
  }
  void Clear() {
    std::lock_guard<std::mutex> l(mu_);
    items_.clear();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Arrival> items_;
};

// ---------------------------------------------------------------------------
// The runner's own server: the node dials our streams to receive what we
// send it, and sends us its echoes (by pipeline when it holds no stream).

template <class Frame>
class OutConn {
 public:
  void Push(Frame f) {
    std::lock_guard<std::mutex> l(mu_);
    q_.push_back(std::move(f));
    cv_.notify_all();
  }
  // Whether the node ended the call (cancelled or half-closed) by `deadline`.
  bool WaitEnded(absl::Time deadline) {
    std::unique_lock<std::mutex> l(mu_);
    while (!ended_ && absl::Now() < deadline) cv_.wait_for(l, std::chrono::milliseconds(50));
    return ended_;
  }
  bool Ended() {
    std::lock_guard<std::mutex> l(mu_);
    return ended_;
  }
  std::map<std::string, std::string> metadata;

 private:
  template <class F>
  friend class OutStreams;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Frame> q_;
  bool ended_ = false;
};

template <class Frame>
class OutStreams {
 public:
  OutStreams(const Config& cfg, Frame heartbeat) : cfg_(cfg), heartbeat_(std::move(heartbeat)) {}

  grpc::Status Serve(grpc::ServerContext* ctx,
                     grpc::ServerReaderWriter<Frame, v1::StreamControl>* stream) {
    auto conn = std::make_shared<OutConn<Frame>>();
    for (const auto& [k, v] : ctx->client_metadata()) {
      conn->metadata[std::string(k.data(), k.size())] = std::string(v.data(), v.size());
    }
    if (conn->metadata["x-etcd-cluster-id"] != Hex(cfg_.cluster)) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "cluster ID mismatch");
    }
    if (conn->metadata["x-server-from"] != Hex(cfg_.server_id)) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "error sender not found");
    }
    ctx->AddInitialMetadata("x-server-version", "3.5.0");
    stream->SendInitialMetadata();
    {
      std::lock_guard<std::mutex> l(mu_);
      current_ = conn;
      cv_.notify_all();
    }
    std::thread reader([&] {
      v1::StreamControl c;
      while (stream->Read(&c)) {
      }
      std::lock_guard<std::mutex> l(conn->mu_);
      conn->ended_ = true;
      conn->cv_.notify_all();
    });
    while (true) {
      Frame f;
      {
        std::unique_lock<std::mutex> l(conn->mu_);
        // An idle second gets a link heartbeat, as a writer must send.
        conn->cv_.wait_for(l, std::chrono::seconds(1),
                           [&] { return !conn->q_.empty() || conn->ended_ || ctx->IsCancelled(); });
        if (conn->ended_ || ctx->IsCancelled()) break;
        if (conn->q_.empty()) {
          f = heartbeat_;
        } else {
          f = std::move(conn->q_.front());
          conn->q_.pop_front();
        }
      }
      if (!stream->Write(f)) break;
    }
    ctx->TryCancel();
    reader.join();
    return grpc::Status::OK;
  }

  // The node's live dial (the newest, not ended), waiting up to `deadline`.
  std::shared_ptr<OutConn<Frame>> WaitConn(absl::Time deadline) {
    std::unique_lock<std::mutex> l(mu_);
    while ((current_ == nullptr || current_->Ended()) && absl::Now() < deadline) {
      cv_.wait_for(l, std::chrono::milliseconds(50));
    }
    return current_ != nullptr && !current_->Ended() ? current_ : nullptr;
  }

 private:
  const Config& cfg_;
  const Frame heartbeat_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::shared_ptr<OutConn<Frame>> current_;
};

v1::MessageFrame V3Heartbeat() {
  v1::MessageFrame f;
  f.add_messages()->set_type(raftpb::MsgHeartbeat);
  return f;
}

v1::MsgAppV2Frame V2Heartbeat() {
  v1::MsgAppV2Frame f;
  f.add_records()->mutable_link_heartbeat();
  return f;
}

class RunnerService final : public v1::RaftTransport::Service {
 public:
  RunnerService(const Config& cfg, Inbox* inbox)
      : cfg_(cfg), inbox_(inbox), v3(cfg, V3Heartbeat()), v2(cfg, V2Heartbeat()) {}

  grpc::Status MessageStream(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<v1::MessageFrame, v1::StreamControl>* s) override {
    return v3.Serve(ctx, s);
  }
  grpc::Status MsgAppV2Stream(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<v1::MsgAppV2Frame, v1::StreamControl>* s) override {
    return v2.Serve(ctx, s);
  }
  grpc::Status Pipeline(grpc::ServerContext* ctx, const v1::PipelineRequest* req,
                        v1::PipelineResponse*) override {
    auto it = ctx->client_metadata().find("x-etcd-cluster-id");
    if (it == ctx->client_metadata().end() ||
        std::string(it->second.data(), it->second.size()) != Hex(cfg_.cluster)) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "cluster ID mismatch");
    }
    inbox_->Add("pipeline", req->message());
    return grpc::Status::OK;
  }
  grpc::Status Snapshot(grpc::ServerContext*, grpc::ServerReader<v1::SnapshotFrame>*,
                        v1::SnapshotResponse*) override {
    return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "the runner takes no snapshots");
  }
  grpc::Status Probe(grpc::ServerContext*, const v1::ProbeRequest*,
                     v1::ProbeResponse* resp) override {
    resp->set_ok(true);
    resp->set_now_unix_nanos(absl::ToUnixNanos(absl::Now()));
    return grpc::Status::OK;
  }

 private:
  const Config& cfg_;
  Inbox* inbox_;

 public:
  OutStreams<v1::MessageFrame> v3;
  OutStreams<v1::MsgAppV2Frame> v2;
};

// ---------------------------------------------------------------------------
// The runner as a client of the node under test.

// Identity metadata, etcd's headers; cases change or drop single keys.
class Meta {
 public:
  explicit Meta(const Config& cfg) {
    kv_["x-server-from"] = Hex(cfg.runner_id);
    kv_["x-raft-to"] = Hex(cfg.server_id);
    kv_["x-etcd-cluster-id"] = Hex(cfg.cluster);
    kv_["x-server-version"] = "3.5.0";
    kv_["x-min-cluster-version"] = "3.0.0";
  }
  Meta& Set(const std::string& k, const std::string& v) {
    kv_[k] = v;
    return *this;
  }
  Meta& Drop(const std::string& k) {
    kv_.erase(k);
    return *this;
  }
  void Apply(grpc::ClientContext* ctx) const {
    for (const auto& [k, v] : kv_) ctx->AddMetadata(k, v);
  }

 private:
  std::map<std::string, std::string> kv_;
};

// A stream call the runner holds on the node (the runner is the reader).
// Delivered messages go to the inbox as via `label`.
class Held {
 public:
  enum Kind { kV3, kV2 };
  Held(v1::RaftTransport::Stub* stub, Kind kind, const Meta& meta, Inbox* inbox, std::string label,
       const Config& cfg)
      : kind_(kind),
        label_(std::move(label)),
        inbox_(inbox),
        decoder_(cfg.runner_id, cfg.server_id) {
    meta.Apply(&ctx_);
    // Long enough for any case; a stream the node never ends still stops.
    ctx_.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(5));
    if (kind == kV3) {
      v3_ = stub->MessageStream(&ctx_);
    } else {
      v2_ = stub->MsgAppV2Stream(&ctx_);
    }
    thread_ = std::thread([this] { Run(); });
  }
  ~Held() {
    ctx_.TryCancel();
    thread_.join();
  }
  // Whether the node sent its initial metadata ("dial succeeded") by then.
  bool WaitHeaders(absl::Time deadline) {
    std::unique_lock<std::mutex> l(mu_);
    while (!headers_ && !ended_ && absl::Now() < deadline) {
      cv_.wait_for(l, std::chrono::milliseconds(50));
    }
    return headers_;
  }
  // Whether the call ended by then; its status in `s`.
  bool WaitEnded(absl::Time deadline, grpc::Status* s = nullptr) {
    std::unique_lock<std::mutex> l(mu_);
    while (!ended_ && absl::Now() < deadline) cv_.wait_for(l, std::chrono::milliseconds(50));
    if (s != nullptr) *s = status_;
    return ended_;
  }
  bool WaitLinkHeartbeat(absl::Time deadline) {
    std::unique_lock<std::mutex> l(mu_);
    while (link_heartbeats_ == 0 && !ended_ && absl::Now() < deadline) {
      cv_.wait_for(l, std::chrono::milliseconds(50));
    }
    return link_heartbeats_ > 0;
  }
  void HalfClose() {
    if (v3_) v3_->WritesDone();
    if (v2_) v2_->WritesDone();
  }
  std::string server_version() {
    std::lock_guard<std::mutex> l(mu_);
    return server_version_;
  }
  std::string error() {
    std::lock_guard<std::mutex> l(mu_);
    return error_;
  }
  const std::string& label() const { return label_; }

 private:
  void Run() {
    if (kind_ == kV3) {
      v3_->WaitForInitialMetadata();
    } else {
      v2_->WaitForInitialMetadata();
    }
    {
      std::lock_guard<std::mutex> l(mu_);
      const auto& md = ctx_.GetServerInitialMetadata();
      auto it = md.find("x-server-version");
      if (it != md.end()) server_version_ = std::string(it->second.data(), it->second.size());
      // A rejected call ends with trailers only: initial metadata carrying
      // x-server-version is what "the dial succeeded" looks like.
      headers_ = !server_version_.empty();
      cv_.notify_all();
    }
    if (kind_ == kV3) {
      v1::MessageFrame f;
      while (v3_->Read(&f)) {
        for (raftpb::Message& m : *f.mutable_messages()) Deliver(std::move(m));
      }
      Finish(v3_->Finish());
    } else {
      v1::MsgAppV2Frame f;
      while (v2_->Read(&f)) {
        for (v1::MsgAppV2Record& r : *f.mutable_records()) {
          absl::StatusOr<raftpb::Message> m = decoder_.Decode(std::move(r));
          if (!m.ok()) {
            std::lock_guard<std::mutex> l(mu_);
            error_ = absl::StrCat("undecodable v2 record: ", m.status().ToString());
            ctx_.TryCancel();
            break;
          }
          Deliver(*std::move(m));
        }
      }
      Finish(v2_->Finish());
    }
  }
  void Deliver(raftpb::Message m) {
    if (IsLinkHeartbeat(m)) {
      std::lock_guard<std::mutex> l(mu_);
      ++link_heartbeats_;
      cv_.notify_all();
      return;
    }
    inbox_->Add(label_, std::move(m));
  }
  void Finish(grpc::Status s) {
    std::lock_guard<std::mutex> l(mu_);
    status_ = std::move(s);
    ended_ = true;
    cv_.notify_all();
  }

  const Kind kind_;
  const std::string label_;
  Inbox* const inbox_;
  MsgAppV2Decoder decoder_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::StreamControl, v1::MessageFrame>> v3_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::StreamControl, v1::MsgAppV2Frame>> v2_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool headers_ = false;
  bool ended_ = false;
  int link_heartbeats_ = 0;
  grpc::Status status_;
  std::string server_version_;
  std::string error_;
};

// ---------------------------------------------------------------------------
// Cases.

struct Result {
  bool ok = true;
  std::string detail;  // what was seen (PASS) or why it failed (FAIL)
};

Result Pass(std::string d = "") { return {true, std::move(d)}; }
Result Fail(std::string d) { return {false, std::move(d)}; }

class Runner {
 public:
  Runner(const Config& cfg, std::shared_ptr<grpc::Channel> ch, RunnerService* service, Inbox* inbox)
      : cfg_(cfg), stub_(v1::RaftTransport::NewStub(ch)), service_(service), inbox_(inbox) {}

  using Case = Result (Runner::*)();
  static const std::vector<std::pair<std::string, Case>>& Cases();

  Result Run(Case c) { return (this->*c)(); }

  // ---- helpers ----
  absl::Time Deadline() const { return absl::Now() + cfg_.timeout; }
  Meta M() const { return Meta(cfg_); }

  raftpb::Message Msg(raftpb::MessageType t, const std::string& tag) {
    raftpb::Message m;
    m.set_type(t);
    m.set_from(cfg_.runner_id);
    m.set_to(cfg_.server_id);
    m.set_term(7);
    m.set_logterm(6);
    m.set_index(100 + t);
    m.set_commit(90 + t);
    m.set_reject(t % 2 == 1);
    m.set_rejecthint(t);
    m.set_context(tag);
    if (t == raftpb::MsgApp || t == raftpb::MsgProp) {
      for (int k = 0; k < 2; ++k) {
        raftpb::Entry* e = m.add_entries();
        e->set_term(7);
        e->set_index(101 + t + k);
        e->set_type(k ? raftpb::EntryConfChange : raftpb::EntryNormal);
        e->set_data(absl::StrCat(tag, std::string("\0\xff", 2), k));
      }
    }
    if (t == raftpb::MsgReadIndexResp) *m.add_responses() = raftpb::Message(m);
    return m;
  }

  // Every type but MsgSnap (which travels only as a snapshot).
  std::vector<raftpb::Message> EveryType(const std::string& tag) {
    std::vector<raftpb::Message> out;
    for (int t = raftpb::MessageType_MIN; t <= raftpb::MessageType_MAX; ++t) {
      if (!raftpb::MessageType_IsValid(t) || t == raftpb::MsgSnap) continue;
      out.push_back(Msg(static_cast<raftpb::MessageType>(t), absl::StrCat(tag, ":", t)));
    }
    return out;
  }

  // A MsgApp as the v2 codec carries it: only the fields it rebuilds.
  raftpb::Message App(uint64_t term, uint64_t logterm, uint64_t index, int entries, uint64_t commit,
                      const std::string& tag, uint64_t from = 0, uint64_t to = 0) {
    raftpb::Message m;
    m.set_type(raftpb::MsgApp);
    m.set_from(from ? from : cfg_.runner_id);
    m.set_to(to ? to : cfg_.server_id);
    m.set_term(term);
    m.set_logterm(logterm);
    m.set_index(index);
    m.set_commit(commit);
    for (int k = 0; k < entries; ++k) {
      raftpb::Entry* e = m.add_entries();
      e->set_term(term);
      e->set_index(index + 1 + k);
      e->set_type(raftpb::EntryNormal);
      e->set_data(absl::StrCat(tag, ":", index + 1 + k));
    }
    return m;
  }

  grpc::Status Pipeline(const Meta& meta, const raftpb::Message& m,
                        std::string* raft_error = nullptr) {
    grpc::ClientContext ctx;
    meta.Apply(&ctx);
    ctx.set_deadline(absl::ToChronoTime(Deadline()));
    v1::PipelineRequest req;
    *req.mutable_message() = m;
    v1::PipelineResponse resp;
    grpc::Status s = stub_->Pipeline(&ctx, req, &resp);
    if (raft_error != nullptr) *raft_error = RaftError(ctx);
    return s;
  }

  static std::string RaftError(const grpc::ClientContext& ctx) {
    const auto& md = ctx.GetServerTrailingMetadata();
    auto it = md.find("raft-error");
    return it == md.end() ? "" : std::string(it->second.data(), it->second.size());
  }

  // A Snapshot call: `frames` in order, then (unless `cancel`) a
  // half-close; with `cancel`, waits `linger` and cancels instead.
  grpc::Status Snapshot(const Meta& meta, const std::vector<v1::SnapshotFrame>& frames,
                        bool cancel = false, absl::Duration linger = absl::ZeroDuration(),
                        std::string* raft_error = nullptr) {
    grpc::ClientContext ctx;
    meta.Apply(&ctx);
    ctx.set_deadline(absl::ToChronoTime(Deadline()));
    v1::SnapshotResponse resp;
    auto w = stub_->Snapshot(&ctx, &resp);
    for (const v1::SnapshotFrame& f : frames) {
      if (!w->Write(f)) break;  // the server ended the call; Finish says why
    }
    if (cancel) {
      absl::SleepFor(linger);  // let what was written reach the server
      ctx.TryCancel();
    } else {
      w->WritesDone();
    }
    grpc::Status s = w->Finish();
    if (raft_error != nullptr) *raft_error = RaftError(ctx);
    return s;
  }

  raftpb::Message SnapMsg(uint64_t index, uint64_t from = 0, uint64_t to = 0) {
    raftpb::Message m;
    m.set_type(raftpb::MsgSnap);
    m.set_from(from ? from : cfg_.runner_id);
    m.set_to(to ? to : cfg_.server_id);
    m.set_term(9);
    raftpb::SnapshotMetadata* md = m.mutable_snapshot()->mutable_metadata();
    md->set_index(index);
    md->set_term(9);
    md->mutable_conf_state()->add_voters(cfg_.server_id);
    md->mutable_conf_state()->add_voters(cfg_.runner_id);
    return m;
  }

  static std::string Data(size_t n, int seed) {
    std::string d(n, '\0');
    for (size_t i = 0; i < n; ++i) d[i] = static_cast<char>((i * 131 + (i >> 9) + seed) & 0xff);
    return d;
  }

  static uint32_t Crc(absl::string_view d) { return Crc32cExtend(0, d.data(), d.size()); }

  // header{m, size, offset}, chunks of `chunk` bytes of data[offset..] (each
  // with its chunk_crc32c), trailer{crc}.
  static std::vector<v1::SnapshotFrame> SnapFrames(const raftpb::Message& m, uint64_t size,
                                                   absl::string_view data, size_t chunk,
                                                   std::optional<uint32_t> trailer,
                                                   uint64_t offset = 0) {
    std::vector<v1::SnapshotFrame> out(1);
    *out[0].mutable_header()->mutable_message() = m;
    out[0].mutable_header()->set_data_size(size);
    out[0].mutable_header()->set_offset(offset);
    for (size_t off = offset; off < data.size(); off += chunk) {
      v1::SnapshotFrame f;
      const absl::string_view c = data.substr(off, chunk);
      f.set_chunk(std::string(c));
      f.set_chunk_crc32c(Crc(c));
      out.push_back(std::move(f));
    }
    if (trailer) {
      v1::SnapshotFrame t;
      t.mutable_trailer()->set_crc32c(*trailer);
      out.push_back(std::move(t));
    }
    return out;
  }

  // What the node answers a stored snapshot with (see CONFORMANCE.md).
  raftpb::Message SnapAck(uint64_t index, absl::string_view data) {
    raftpb::Message m;
    m.set_type(raftpb::MsgAppResp);
    m.set_from(cfg_.server_id);
    m.set_to(cfg_.runner_id);
    m.set_term(9);
    m.set_index(index);
    m.set_context(absl::StrFormat("snapshot %08x %d", Crc(data), data.size()));
    return m;
  }

  Result ExpectCode(const std::string& what, const grpc::Status& s, grpc::StatusCode want) {
    if (s.error_code() == want) return Pass();
    return Fail(absl::StrCat(what, ": got ", Describe(s), ", want ", CodeName(want)));
  }

  // Dials a stream as the node's reader and returns how it ended.
  grpc::Status StreamStatus(Held::Kind kind, const Meta& meta, std::string* raft_error = nullptr) {
    grpc::ClientContext ctx;
    meta.Apply(&ctx);
    ctx.set_deadline(absl::ToChronoTime(Deadline()));
    grpc::Status s;
    if (kind == Held::kV3) {
      auto st = stub_->MessageStream(&ctx);
      v1::MessageFrame f;
      while (st->Read(&f)) {
      }
      s = st->Finish();
    } else {
      auto st = stub_->MsgAppV2Stream(&ctx);
      v1::MsgAppV2Frame f;
      while (st->Read(&f)) {
      }
      s = st->Finish();
    }
    if (raft_error != nullptr) *raft_error = RaftError(ctx);
    return s;
  }

  std::unique_ptr<Held> Hold(Held::Kind kind, const std::string& label) {
    return std::make_unique<Held>(stub_.get(), kind, M(), inbox_, label, cfg_);
  }

  // Sends probes by pipeline until one's echo comes back on `label`: the
  // node has attached that stream for sending (it may take a moment after
  // "dial succeeded").
  Result AwaitAttached(const std::string& label, bool msgapp) {
    const absl::Time deadline = Deadline();
    for (int k = 0; absl::Now() < deadline; ++k) {
      const std::string tag = absl::StrCat("attach-", label, "-", ++probes_);
      raftpb::Message m =
          msgapp ? App(1, 1, 1000 * probes_, 1, 0, tag) : Msg(raftpb::MsgHeartbeat, tag);
      grpc::Status s = Pipeline(M(), m);
      if (!s.ok()) return Fail(absl::StrCat("probe by pipeline: ", Describe(s)));
      if (inbox_
              ->WaitAll({Swapped(m)}, label,
                        std::min(deadline, absl::Now() + absl::Milliseconds(500)))
              .empty()) {
        return Pass();
      }
    }
    return Fail(absl::StrCat("the node never sent on the ", label, " stream the runner holds"));
  }

  // The arrivals by `via` that match one of `want` came in want's order.
  Result InOrder(const std::string& via, const std::vector<raftpb::Message>& want,
                 const std::string& what) {
    std::vector<raftpb::Message> got;
    for (const Arrival& a : inbox_->All()) {
      if (a.via != via) continue;
      for (const raftpb::Message& w : want) {
        if (Same(a.m, w)) got.push_back(a.m);
      }
    }
    for (size_t i = 0; i < want.size(); ++i) {
      if (i >= got.size() || !Same(got[i], want[i])) {
        return Fail(absl::StrCat(what, " out of order at ", i));
      }
    }
    return Pass();
  }

  Result Missing(const std::string& what, const std::vector<raftpb::Message>& missing, size_t of) {
    return Fail(absl::StrCat(what, ": ", missing.size(), " of ", of,
                             " never came back, first: ", Short(missing[0])));
  }

  // ---- cases ----
  Result V3FromServerEveryType();
  Result V3FromServerLinkHeartbeat();
  Result V2FromServerSequence();
  Result V2FromServerLinkHeartbeat();
  Result DialMetadata();
  Result V3ToServerEveryType();
  Result V2ToServerSequence();
  Result V3ToServerForeignSender();
  Result V2ToServerBadRecord();
  Result StreamReplacement();
  Result StreamHalfClose();
  Result PipelineOk();
  Result PipelineProcessError();
  Result PipelineOversize();
  Result PipelineUnknownSender();
  Result SnapshotOk();
  Result SnapshotBadChecksum();
  Result SnapshotTruncated();
  Result SnapshotOversize();
  Result SnapshotChunkCorrupt();
  Result SnapshotNoHeader();
  Result SnapshotWrongType();
  Result SnapshotReplaced();
  Result SnapshotResume();
  Result SnapshotResumeWithoutPrefix();
  Result ProbeOk();
  Result RejectClusterId();
  Result RejectOldVersion();
  Result RejectNewerMinVersion();
  Result RejectMalformedVersion();
  Result RejectMissingFrom();
  Result RejectUnknownSenderStream();
  Result RejectRemovedSender();
  Result RejectToMismatch();
  Result RejectSenderIdentity();

 private:
  const Config& cfg_;
  std::unique_ptr<v1::RaftTransport::Stub> stub_;
  RunnerService* const service_;
  Inbox* const inbox_;
  int probes_ = 0;
  bool resume_unimplemented_ = false;
};

const std::vector<std::pair<std::string, Runner::Case>>& Runner::Cases() {
  static const auto* cases = new std::vector<std::pair<std::string, Case>>{
      {"v3_from_server_every_type", &Runner::V3FromServerEveryType},
      {"v3_from_server_link_heartbeat", &Runner::V3FromServerLinkHeartbeat},
      {"v2_from_server_sequence", &Runner::V2FromServerSequence},
      {"v2_from_server_link_heartbeat", &Runner::V2FromServerLinkHeartbeat},
      {"dial_metadata", &Runner::DialMetadata},
      {"v3_to_server_every_type", &Runner::V3ToServerEveryType},
      {"v2_to_server_sequence", &Runner::V2ToServerSequence},
      {"v3_to_server_foreign_sender", &Runner::V3ToServerForeignSender},
      {"v2_to_server_bad_record", &Runner::V2ToServerBadRecord},
      {"stream_replacement", &Runner::StreamReplacement},
      {"stream_half_close", &Runner::StreamHalfClose},
      {"pipeline_ok", &Runner::PipelineOk},
      {"pipeline_process_error", &Runner::PipelineProcessError},
      {"pipeline_oversize", &Runner::PipelineOversize},
      {"pipeline_unknown_sender", &Runner::PipelineUnknownSender},
      {"snapshot_ok", &Runner::SnapshotOk},
      {"snapshot_bad_checksum", &Runner::SnapshotBadChecksum},
      {"snapshot_truncated", &Runner::SnapshotTruncated},
      {"snapshot_oversize", &Runner::SnapshotOversize},
      {"snapshot_chunk_corrupt", &Runner::SnapshotChunkCorrupt},
      {"snapshot_no_header", &Runner::SnapshotNoHeader},
      {"snapshot_wrong_type", &Runner::SnapshotWrongType},
      {"snapshot_replaced", &Runner::SnapshotReplaced},
      {"snapshot_resume", &Runner::SnapshotResume},
      {"snapshot_resume_without_prefix", &Runner::SnapshotResumeWithoutPrefix},
      {"probe", &Runner::ProbeOk},
      {"reject_cluster_id", &Runner::RejectClusterId},
      {"reject_old_version", &Runner::RejectOldVersion},
      {"reject_newer_min_version", &Runner::RejectNewerMinVersion},
      {"reject_malformed_version", &Runner::RejectMalformedVersion},
      {"reject_missing_from", &Runner::RejectMissingFrom},
      {"reject_unknown_sender_stream", &Runner::RejectUnknownSenderStream},
      {"reject_removed_sender", &Runner::RejectRemovedSender},
      {"reject_to_mismatch", &Runner::RejectToMismatch},
      {"reject_sender_identity", &Runner::RejectSenderIdentity},
  };
  return *cases;
}

// The node writes every type on the v3 stream the runner holds.
Result Runner::V3FromServerEveryType() {
  auto held = Hold(Held::kV3, "v3-held");
  if (!held->WaitHeaders(Deadline())) {
    grpc::Status s;
    held->WaitEnded(absl::Now(), &s);
    return Fail(absl::StrCat("no initial metadata with x-server-version; call: ", Describe(s)));
  }
  if (Result r = AwaitAttached("v3-held", false); !r.ok) return r;
  std::vector<raftpb::Message> want;
  for (const raftpb::Message& m : EveryType("v3-from")) {
    grpc::Status s = Pipeline(M(), m);
    if (!s.ok()) return Fail(absl::StrCat("pipeline ", Short(m), ": ", Describe(s)));
    want.push_back(Swapped(m));
  }
  auto missing = inbox_->WaitAll(want, "v3-held", Deadline());
  if (!missing.empty()) return Missing("echoes on the v3 stream", missing, want.size());
  return Pass(absl::StrCat(want.size(), " types; server version ", held->server_version()));
}

Result Runner::V3FromServerLinkHeartbeat() {
  auto held = Hold(Held::kV3, "v3-idle");
  if (!held->WaitHeaders(Deadline())) return Fail("the stream was not accepted");
  const absl::Time start = absl::Now();
  // A writer sends one at least every read timeout / 3 (5 s / 3 by default).
  if (!held->WaitLinkHeartbeat(start + absl::Seconds(6))) {
    return Fail("no link heartbeat on an idle v3 stream within 6 s");
  }
  return Pass(absl::StrCat("first after ", absl::FormatDuration(absl::Now() - start)));
}

Result Runner::V2FromServerSequence() {
  auto held = Hold(Held::kV2, "v2-held");
  if (!held->WaitHeaders(Deadline())) return Fail("the v2 stream was not accepted");
  if (Result r = AwaitAttached("v2-held", true); !r.ok) return r;
  // Contiguous appends (app_entries), a commit-only one, a term change, a
  // gap: whatever records the node chooses must decode to these, in order.
  std::vector<raftpb::Message> sent = {
      App(5, 5, 100, 2, 100, "v2-from"), App(5, 5, 102, 1, 101, "v2-from"),
      App(5, 5, 103, 0, 103, "v2-from"), App(6, 5, 103, 1, 103, "v2-from"),
      App(6, 6, 104, 1, 104, "v2-from"), App(6, 6, 200, 1, 104, "v2-from"),
      App(6, 6, 201, 2, 200, "v2-from")};
  std::vector<raftpb::Message> want;
  for (const raftpb::Message& m : sent) {
    grpc::Status s = Pipeline(M(), m);
    if (!s.ok()) return Fail(absl::StrCat("pipeline: ", Describe(s)));
    want.push_back(Swapped(m));
  }
  auto missing = inbox_->WaitAll(want, "v2-held", Deadline());
  if (!missing.empty()) return Missing("MsgApps on the v2 stream", missing, want.size());
  // Order within the stream is Raft's append order: check it.
  if (Result r = InOrder("v2-held", want, "v2 MsgApps"); !r.ok) return r;
  if (!held->error().empty()) return Fail(held->error());
  return Pass(absl::StrCat(want.size(), " MsgApps decoded in order"));
}

Result Runner::V2FromServerLinkHeartbeat() {
  auto held = Hold(Held::kV2, "v2-idle");
  if (!held->WaitHeaders(Deadline())) return Fail("the v2 stream was not accepted");
  const absl::Time start = absl::Now();
  if (!held->WaitLinkHeartbeat(start + absl::Seconds(6))) {
    return Fail("no link_heartbeat record on an idle v2 stream within 6 s");
  }
  return Pass(absl::StrCat("first after ", absl::FormatDuration(absl::Now() - start)));
}

Result Runner::DialMetadata() {
  auto v3 = service_->v3.WaitConn(Deadline());
  auto v2 = service_->v2.WaitConn(Deadline());
  if (v3 == nullptr) return Fail("the node never dialled the runner's MessageStream");
  if (v2 == nullptr) return Fail("the node never dialled the runner's MsgAppV2Stream");
  for (auto* md : {&v3->metadata, &v2->metadata}) {
    if ((*md)["x-server-from"] != Hex(cfg_.server_id) ||
        (*md)["x-raft-to"] != Hex(cfg_.runner_id) ||
        (*md)["x-etcd-cluster-id"] != Hex(cfg_.cluster)) {
      return Fail(absl::StrCat("dial metadata from=", (*md)["x-server-from"], " to=",
                               (*md)["x-raft-to"], " cluster=", (*md)["x-etcd-cluster-id"]));
    }
    std::vector<std::string> v = absl::StrSplit((*md)["x-server-version"], '.');
    int major = 0;
    if (v.size() < 2 || !absl::SimpleAtoi(v[0], &major) || major < 3) {
      return Fail(absl::StrCat("x-server-version \"", (*md)["x-server-version"], "\""));
    }
  }
  return Pass(absl::StrCat("version ", v3->metadata["x-server-version"]));
}

// The runner writes every type, link heartbeats between them, on the
// stream the node dialled; the node echoes each (not the heartbeats).
Result Runner::V3ToServerEveryType() {
  auto conn = service_->v3.WaitConn(Deadline());
  if (conn == nullptr) return Fail("the node never dialled the runner's MessageStream");
  // Echoes come back in order on a v3 stream the runner holds, so a
  // delivered link heartbeat would show before the marker.
  auto held = Hold(Held::kV3, "v3-echo");
  if (!held->WaitHeaders(Deadline())) return Fail("the node refused the runner's stream");
  if (Result r = AwaitAttached("v3-echo", false); !r.ok) return r;
  v1::MessageFrame f;
  std::vector<raftpb::Message> want;
  for (const raftpb::Message& m : EveryType("v3-to")) {
    f.add_messages()->set_type(raftpb::MsgHeartbeat);  // link heartbeat
    *f.add_messages() = m;
    want.push_back(Swapped(m));
  }
  raftpb::Message marker = Msg(raftpb::MsgHeartbeat, "v3-to:marker");
  *f.add_messages() = marker;
  want.push_back(Swapped(marker));
  conn->Push(std::move(f));
  auto missing = inbox_->WaitAll(want, "", Deadline());
  if (!missing.empty()) return Missing("echoes of the runner's stream", missing, want.size());
  for (const Arrival& a : inbox_->All()) {
    if (a.m.type() == raftpb::MsgHeartbeat && a.m.term() == 0 && a.m.context().empty()) {
      return Fail("a link heartbeat was delivered to Raft (its echo came back)");
    }
  }
  return Pass(
      absl::StrCat(want.size() - 1, " types, ", want.size() - 1, " link heartbeats not delivered"));
}

Result Runner::V2ToServerSequence() {
  auto conn = service_->v2.WaitConn(Deadline());
  if (conn == nullptr) return Fail("the node never dialled the runner's MsgAppV2Stream");
  auto held = Hold(Held::kV2, "v2-echo");
  if (!held->WaitHeaders(Deadline())) return Fail("the node refused the runner's v2 stream");
  if (Result r = AwaitAttached("v2-echo", true); !r.ok) return r;
  // etcd's encoder's sequences, written by hand (CONFORMANCE.md lists the
  // state after each): the first record is a full app, so the node's
  // decoder state before it does not matter.
  auto full = [](const raftpb::Message& m) {
    v1::MsgAppV2Record r;
    *r.mutable_app() = m;
    return r;
  };
  auto entries = [&](const raftpb::Message& m) {
    v1::MsgAppV2Record r;
    *r.mutable_app_entries()->mutable_entries() = m.entries();
    r.mutable_app_entries()->set_commit(m.commit());
    return r;
  };
  v1::MsgAppV2Record hb;
  hb.mutable_link_heartbeat();
  const std::string tag = "v2-to";
  const std::vector<raftpb::Message> want_decoded = {
      App(5, 5, 10, 2, 9, tag),    // app: state (5, 12)
      App(5, 5, 12, 1, 11, tag),   // app_entries after a heartbeat: (5, 13)
      App(5, 5, 13, 0, 13, tag),   // app_entries, commit only: (5, 13)
      App(6, 5, 13, 1, 13, tag),   // app, term change: (6, 14)
      App(6, 6, 14, 1, 14, tag),   // app_entries after app: (6, 15)
      App(6, 6, 20, 1, 15, tag),   // app after a heartbeat, index gap: (6, 21)
      App(6, 6, 21, 2, 21, tag)};  // app_entries: (6, 23)
  v1::MsgAppV2Frame f;
  *f.add_records() = full(want_decoded[0]);
  *f.add_records() = hb;
  *f.add_records() = entries(want_decoded[1]);
  *f.add_records() = entries(want_decoded[2]);
  *f.add_records() = full(want_decoded[3]);
  *f.add_records() = entries(want_decoded[4]);
  *f.add_records() = hb;
  *f.add_records() = full(want_decoded[5]);
  conn->Push(std::move(f));
  v1::MsgAppV2Frame f2;  // a record in a later frame continues the state
  *f2.add_records() = entries(want_decoded[6]);
  conn->Push(std::move(f2));
  std::vector<raftpb::Message> want;
  for (const raftpb::Message& m : want_decoded) want.push_back(Swapped(m));
  auto missing = inbox_->WaitAll(want, "v2-echo", Deadline());
  if (!missing.empty()) return Missing("decoded MsgApps", missing, want.size());
  if (Result r = InOrder("v2-echo", want, "decoded MsgApps"); !r.ok) return r;
  return Pass("9 records (2 link heartbeats) decoded to 7 MsgApps in order");
}

Result Runner::V3ToServerForeignSender() {
  auto conn = service_->v3.WaitConn(Deadline());
  if (conn == nullptr) return Fail("the node never dialled the runner's MessageStream");
  v1::MessageFrame f;
  raftpb::Message m = Msg(raftpb::MsgHeartbeat, "foreign");
  m.set_from(cfg_.runner_id + 0x100);  // not the member this stream is from
  *f.add_messages() = m;
  conn->Push(std::move(f));
  if (!conn->WaitEnded(Deadline())) {
    return Fail("the node kept a stream that carried another member's message");
  }
  for (const Arrival& a : inbox_->All()) {
    if (a.m.context() == "foreign") return Fail("the foreign message was delivered");
  }
  return Pass("stream ended, message not delivered");
}

Result Runner::V2ToServerBadRecord() {
  auto conn = service_->v2.WaitConn(Deadline());
  if (conn == nullptr) return Fail("the node never dialled the runner's MsgAppV2Stream");
  v1::MsgAppV2Frame f;
  raftpb::Message m = Msg(raftpb::MsgVote, "bad-record");
  *f.add_records()->mutable_app() = m;  // only MsgApp may travel on v2
  conn->Push(std::move(f));
  if (!conn->WaitEnded(Deadline())) return Fail("the node kept a v2 stream that carried a MsgVote");
  for (const Arrival& a : inbox_->All()) {
    if (a.m.context() == "bad-record") return Fail("the MsgVote was delivered");
  }
  return Pass("stream ended, message not delivered");
}

Result Runner::StreamReplacement() {
  auto a = Hold(Held::kV3, "v3-a");
  if (!a->WaitHeaders(Deadline())) return Fail("first stream not accepted");
  if (Result r = AwaitAttached("v3-a", false); !r.ok) return r;
  auto b = Hold(Held::kV3, "v3-b");
  if (!b->WaitHeaders(Deadline())) return Fail("second stream not accepted");
  grpc::Status s;
  if (!a->WaitEnded(Deadline(), &s)) return Fail("the replaced stream did not end");
  if (Result r = AwaitAttached("v3-b", false); !r.ok) return r;
  return Pass(absl::StrCat("old call ended ", Describe(s)));
}

Result Runner::StreamHalfClose() {
  auto held = Hold(Held::kV3, "v3-hc");
  if (!held->WaitHeaders(Deadline())) return Fail("stream not accepted");
  if (Result r = AwaitAttached("v3-hc", false); !r.ok) return r;
  held->HalfClose();
  grpc::Status s;
  if (!held->WaitEnded(Deadline(), &s)) return Fail("the server did not end a half-closed stream");
  if (!s.ok() && s.error_code() != grpc::StatusCode::CANCELLED) {
    return Fail(absl::StrCat("ended with ", Describe(s), ", want OK or CANCELLED"));
  }
  // Traffic goes on without that stream.
  raftpb::Message m = Msg(raftpb::MsgHeartbeat, "after-half-close");
  grpc::Status p = Pipeline(M(), m);
  if (!p.ok()) return Fail(absl::StrCat("pipeline: ", Describe(p)));
  if (!inbox_->WaitAll({Swapped(m)}, "", Deadline()).empty()) {
    return Fail("a message sent after the half-close was never echoed");
  }
  return Pass(absl::StrCat("ended ", Describe(s)));
}

Result Runner::PipelineOk() {
  raftpb::Message m = Msg(raftpb::MsgProp, "pipeline-ok");
  grpc::Status s = Pipeline(M(), m);
  if (!s.ok()) return Fail(Describe(s));
  if (!inbox_->WaitAll({Swapped(m)}, "", Deadline()).empty()) {
    return Fail("accepted but never echoed");
  }
  return Pass();
}

Result Runner::PipelineProcessError() {
  raftpb::Message m = Msg(raftpb::MsgHeartbeat, "conformance-fail");
  return ExpectCode("a message Process fails", Pipeline(M(), m), grpc::StatusCode::INTERNAL);
}

Result Runner::PipelineOversize() {
  raftpb::Message m = Msg(raftpb::MsgApp, "oversize");
  m.mutable_entries(0)->set_data(std::string(3 << 20, 'x'));
  return ExpectCode("a 3 MiB message", Pipeline(M(), m), grpc::StatusCode::RESOURCE_EXHAUSTED);
}

Result Runner::PipelineUnknownSender() {
  // etcd accepts pipeline messages from a member it does not know yet.
  raftpb::Message m = Msg(raftpb::MsgHeartbeat, "unknown");
  m.set_from(cfg_.unknown);
  return ExpectCode("a stranger's message",
                    Pipeline(M().Set("x-server-from", Hex(cfg_.unknown)), m), grpc::StatusCode::OK);
}

Result Runner::SnapshotOk() {
  const std::string data = Data(300 * 1024 + 7, 1);
  raftpb::Message m = SnapMsg(42);
  grpc::Status s = Snapshot(M(), SnapFrames(m, data.size(), data, 64 * 1024, Crc(data)));
  if (!s.ok()) return Fail(Describe(s));
  if (!inbox_->WaitAll({SnapAck(42, data)}, "", Deadline()).empty()) {
    return Fail("OK, but the node never acknowledged the stored data's checksum and size");
  }
  return Pass(absl::StrCat(data.size(), " bytes stored"));
}

Result Runner::SnapshotBadChecksum() {
  const std::string data = Data(100 * 1024, 2);
  return ExpectCode(
      "wrong trailer checksum",
      Snapshot(M(), SnapFrames(SnapMsg(43), data.size(), data, 32 * 1024, Crc(data) ^ 1)),
      grpc::StatusCode::DATA_LOSS);
}

Result Runner::SnapshotTruncated() {
  const std::string data = Data(100 * 1024, 3);
  const std::string half = data.substr(0, data.size() / 2);
  return ExpectCode("half the declared data, then the trailer",
                    Snapshot(M(), SnapFrames(SnapMsg(44), data.size(), half, 16 * 1024, Crc(half))),
                    grpc::StatusCode::DATA_LOSS);
}

Result Runner::SnapshotOversize() {
  const std::string data = Data(64 * 1024, 4);
  return ExpectCode(
      "twice the declared data",
      Snapshot(M(), SnapFrames(SnapMsg(45), data.size() / 2, data, 8 * 1024, Crc(data))),
      grpc::StatusCode::RESOURCE_EXHAUSTED);
}

Result Runner::SnapshotChunkCorrupt() {
  // A flipped byte: caught by its chunk_crc32c at once, or by the trailer.
  const std::string data = Data(100 * 1024, 5);
  auto frames = SnapFrames(SnapMsg(46), data.size(), data, 16 * 1024, Crc(data));
  (*frames[2].mutable_chunk())[100] ^= 0x20;
  return ExpectCode("a corrupted chunk", Snapshot(M(), frames), grpc::StatusCode::DATA_LOSS);
}

Result Runner::SnapshotNoHeader() {
  const std::string data = Data(1024, 6);
  auto frames = SnapFrames(SnapMsg(47), data.size(), data, 512, Crc(data));
  frames.erase(frames.begin());
  return ExpectCode("chunks without a header", Snapshot(M(), frames),
                    grpc::StatusCode::INVALID_ARGUMENT);
}

Result Runner::SnapshotWrongType() {
  const std::string data = Data(1024, 7);
  raftpb::Message m = SnapMsg(48);
  m.set_type(raftpb::MsgApp);
  return ExpectCode("a header whose message is a MsgApp",
                    Snapshot(M(), SnapFrames(m, data.size(), data, 512, Crc(data))),
                    grpc::StatusCode::INVALID_ARGUMENT);
}

// One transfer per sender: a newer one replaces one still open (etcd keeps
// only the latest snapshot from a peer).
Result Runner::SnapshotReplaced() {
  const std::string data = Data(256 * 1024, 13);
  auto old_frames = SnapFrames(SnapMsg(54), data.size(), data, 64 * 1024, Crc(data));
  grpc::ClientContext ctx;
  M().Apply(&ctx);
  ctx.set_deadline(absl::ToChronoTime(Deadline()));
  v1::SnapshotResponse resp;
  auto old_call = stub_->Snapshot(&ctx, &resp);
  old_call->Write(old_frames[0]);
  old_call->Write(old_frames[1]);
  // Nothing tells a client that the server has taken the header; this gap
  // orders the two transfers at the server.
  absl::SleepFor(absl::Milliseconds(300));
  grpc::Status newer =
      Snapshot(M(), SnapFrames(SnapMsg(55), data.size(), data, 64 * 1024, Crc(data)));
  if (!newer.ok()) return Fail(absl::StrCat("the newer transfer: ", Describe(newer)));
  // The older one's next frames find it replaced (a server that ended it
  // at once has already answered).
  for (size_t i = 2; i < old_frames.size(); ++i) {
    if (!old_call->Write(old_frames[i])) break;
  }
  old_call->WritesDone();
  return ExpectCode("the replaced transfer", old_call->Finish(), grpc::StatusCode::ABORTED);
}

Result Runner::SnapshotResume() {
  const std::string data = Data(4 << 20, 8);
  raftpb::Message m = SnapMsg(49);
  // First attempt: the header and half of the data, then a cancel (a link
  // that broke). The cancel may overtake data a slow node has not read
  // yet; if it kept nothing, the break comes later next time (0.5, 1.5,
  // then 4.5 s after the last chunk).
  auto frames = SnapFrames(m, data.size(), data, 256 * 1024, std::nullopt);
  frames.resize(1 + 8);
  uint64_t offset = 0;
  for (absl::Duration linger :
       {absl::Milliseconds(500), absl::Milliseconds(1500), absl::Milliseconds(4500)}) {
    grpc::Status first = Snapshot(M(), frames, /*cancel=*/true, linger);
    if (first.ok()) return Fail("a cancelled transfer was answered OK");
    // The node may learn of the cancel a moment after the runner's call ends.
    const absl::Time deadline = absl::Now() + absl::Seconds(3);
    while (true) {
      grpc::ClientContext ctx;
      M().Apply(&ctx);
      ctx.set_deadline(absl::ToChronoTime(Deadline()));
      v1::SnapshotOffsetRequest req;
      *req.mutable_message() = m;
      req.set_data_size(data.size());
      v1::SnapshotOffsetResponse resp;
      grpc::Status s = stub_->SnapshotOffset(&ctx, req, &resp);
      if (s.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
        resume_unimplemented_ = true;
        if (cfg_.require_resume) return Fail("SnapshotOffset is UNIMPLEMENTED");
        break;
      }
      if (!s.ok()) return Fail(absl::StrCat("SnapshotOffset: ", Describe(s)));
      offset = resp.offset();
      if (offset > 8 * 256 * 1024) {
        return Fail(
            absl::StrCat("offered offset ", offset, " beyond the ", 8 * 256 * 1024, " bytes sent"));
      }
      if (offset > 0 || absl::Now() >= deadline) break;
      absl::SleepFor(absl::Milliseconds(100));  // polling the node's answer
    }
    if (offset > 0 || resume_unimplemented_) break;
  }
  if (offset == 0 && cfg_.require_resume)
    return Fail("the node kept nothing of the broken transfer");
  grpc::Status s = Snapshot(M(), SnapFrames(m, data.size(), data, 256 * 1024, Crc(data), offset));
  if (!s.ok()) return Fail(absl::StrCat("the resumed transfer: ", Describe(s)));
  if (!inbox_->WaitAll({SnapAck(49, data)}, "", Deadline()).empty()) {
    return Fail("the stored data's checksum or size is wrong");
  }
  if (resume_unimplemented_) return Pass("SnapshotOffset UNIMPLEMENTED (optional): sent whole");
  return Pass(absl::StrCat("resumed at ", offset, " of ", data.size()));
}

Result Runner::SnapshotResumeWithoutPrefix() {
  const std::string data = Data(64 * 1024, 9);
  auto frames = SnapFrames(SnapMsg(50), data.size(), data, 16 * 1024, Crc(data), 32 * 1024);
  grpc::Status s = Snapshot(M(), frames);
  if (resume_unimplemented_) {
    // A node without resume ignores the offset: the data falls short.
    if (s.error_code() == grpc::StatusCode::FAILED_PRECONDITION ||
        s.error_code() == grpc::StatusCode::DATA_LOSS) {
      return Pass(absl::StrCat("no resume: ", Describe(s)));
    }
    return Fail(absl::StrCat("got ", Describe(s), ", want FAILED_PRECONDITION or DATA_LOSS"));
  }
  return ExpectCode("an offset the node never offered", s, grpc::StatusCode::FAILED_PRECONDITION);
}

Result Runner::ProbeOk() {
  grpc::ClientContext ctx;  // no metadata: probing is not a Raft call
  ctx.set_deadline(absl::ToChronoTime(Deadline()));
  v1::ProbeResponse resp;
  grpc::Status s = stub_->Probe(&ctx, v1::ProbeRequest(), &resp);
  if (!s.ok()) return Fail(Describe(s));
  if (!resp.ok()) return Fail("ok = false");
  const absl::Duration skew =
      absl::AbsDuration(absl::FromUnixNanos(resp.now_unix_nanos()) - absl::Now());
  if (skew > absl::Hours(1))
    return Fail(absl::StrCat("now_unix_nanos is off by ", absl::FormatDuration(skew)));
  return Pass(
      absl::StrCat("clock within ", absl::FormatDuration(absl::Ceil(skew, absl::Milliseconds(1)))));
}

// One metadata change on every Raft RPC kind, each answered `want`.
class Kinds {
 public:
  explicit Kinds(Runner* r) : r_(r) {}
  Result All(const Meta& meta, grpc::StatusCode want, uint64_t msg_from = 0,
             const std::string& raft_error = "") {
    std::vector<std::string> fails;
    auto check = [&](const std::string& kind, const grpc::Status& s, const std::string& re) {
      if (s.error_code() != want) {
        fails.push_back(absl::StrCat(kind, ": ", Describe(s)));
      } else if (!raft_error.empty() && re != raft_error) {
        fails.push_back(absl::StrCat(kind, ": trailer raft-error \"", re, "\""));
      }
    };
    std::string re;
    check("v3 stream", r_->StreamStatus(Held::kV3, meta, &re), re);
    check("v2 stream", r_->StreamStatus(Held::kV2, meta, &re), re);
    raftpb::Message m = r_->Msg(raftpb::MsgHeartbeat, "rejected");
    if (msg_from) m.set_from(msg_from);
    check("pipeline", r_->Pipeline(meta, m, &re), re);
    const std::string data = Runner::Data(4096, 10);
    raftpb::Message snap = r_->SnapMsg(51, msg_from);
    check("snapshot",
          r_->Snapshot(meta, Runner::SnapFrames(snap, data.size(), data, 4096, Runner::Crc(data)),
                       false, absl::ZeroDuration(), &re),
          re);
    if (!fails.empty()) {
      return Fail(absl::StrCat("want ", CodeName(want), "; ", absl::StrJoin(fails, "; ")));
    }
    return Pass(absl::StrCat(CodeName(want), " on v3, v2, pipeline, snapshot"));
  }

 private:
  Runner* r_;
};

Result Runner::RejectClusterId() {
  return Kinds(this).All(M().Set("x-etcd-cluster-id", "dead"),
                         grpc::StatusCode::FAILED_PRECONDITION);
}
Result Runner::RejectOldVersion() {
  return Kinds(this).All(M().Set("x-server-version", "2.3.0"),
                         grpc::StatusCode::FAILED_PRECONDITION);
}
Result Runner::RejectNewerMinVersion() {
  return Kinds(this).All(M().Set("x-min-cluster-version", "99.0.0"),
                         grpc::StatusCode::FAILED_PRECONDITION);
}
Result Runner::RejectMalformedVersion() {
  return Kinds(this).All(M().Set("x-server-version", "three"), grpc::StatusCode::INVALID_ARGUMENT);
}
Result Runner::RejectMissingFrom() {
  return Kinds(this).All(M().Drop("x-server-from"), grpc::StatusCode::INVALID_ARGUMENT);
}
Result Runner::RejectUnknownSenderStream() {
  std::string re;
  grpc::Status v3 = StreamStatus(Held::kV3, M().Set("x-server-from", Hex(cfg_.unknown)));
  grpc::Status v2 = StreamStatus(Held::kV2, M().Set("x-server-from", Hex(cfg_.unknown)));
  if (Result r = ExpectCode("v3 stream", v3, grpc::StatusCode::NOT_FOUND); !r.ok) return r;
  if (Result r = ExpectCode("v2 stream", v2, grpc::StatusCode::NOT_FOUND); !r.ok) return r;
  return Pass("NOT_FOUND on v3, v2");
}
Result Runner::RejectRemovedSender() {
  return Kinds(this).All(M().Set("x-server-from", Hex(cfg_.removed)),
                         grpc::StatusCode::PERMISSION_DENIED, cfg_.removed, "removed-member");
}
Result Runner::RejectToMismatch() {
  std::vector<std::string> fails;
  const Meta wrong_to = M().Set("x-raft-to", Hex(cfg_.server_id + 0x100));
  for (auto kind : {Held::kV3, Held::kV2}) {
    grpc::Status s = StreamStatus(kind, wrong_to);
    if (s.error_code() != grpc::StatusCode::FAILED_PRECONDITION) {
      fails.push_back(absl::StrCat(kind == Held::kV3 ? "v3" : "v2", " x-raft-to: ", Describe(s)));
    }
  }
  raftpb::Message m = Msg(raftpb::MsgHeartbeat, "wrong-to");
  m.set_to(cfg_.server_id + 0x100);
  grpc::Status p = Pipeline(M(), m);
  if (p.error_code() != grpc::StatusCode::PERMISSION_DENIED) {
    fails.push_back(absl::StrCat("pipeline message.to: ", Describe(p)));
  }
  const std::string data = Data(4096, 11);
  grpc::Status s = Snapshot(
      M(), SnapFrames(SnapMsg(52, 0, cfg_.server_id + 0x100), data.size(), data, 4096, Crc(data)));
  if (s.error_code() != grpc::StatusCode::PERMISSION_DENIED) {
    fails.push_back(absl::StrCat("snapshot message.to: ", Describe(s)));
  }
  if (!fails.empty()) return Fail(absl::StrJoin(fails, "; "));
  return Pass("streams FAILED_PRECONDITION, pipeline and snapshot PERMISSION_DENIED");
}
Result Runner::RejectSenderIdentity() {
  // The header says the runner; the body says another member.
  raftpb::Message m = Msg(raftpb::MsgHeartbeat, "impostor");
  m.set_from(cfg_.runner_id + 0x100);
  grpc::Status p = Pipeline(M(), m);
  if (Result r = ExpectCode("pipeline", p, grpc::StatusCode::PERMISSION_DENIED); !r.ok) return r;
  const std::string data = Data(4096, 12);
  grpc::Status s = Snapshot(
      M(), SnapFrames(SnapMsg(53, cfg_.runner_id + 0x100), data.size(), data, 4096, Crc(data)));
  if (Result r = ExpectCode("snapshot", s, grpc::StatusCode::PERMISSION_DENIED); !r.ok) return r;
  return Pass("PERMISSION_DENIED on pipeline, snapshot");
}

bool ParseFlags(int argc, char** argv, Config* cfg) {
  for (int i = 1; i < argc; ++i) {
    const std::vector<std::string> kv = absl::StrSplit(argv[i], absl::MaxSplits('=', 1));
    const std::string& k = kv[0];
    const std::string v = kv.size() > 1 ? kv[1] : "";
    bool ok = true;
    if (k == "--server") {
      cfg->server = v;
    } else if (k == "--listen") {
      cfg->listen = v;
    } else if (k == "--exec") {
      cfg->exec = v;
    } else if (k == "--cases") {
      if (v != "all") cfg->cases = absl::StrSplit(v, ',', absl::SkipEmpty());
    } else if (k == "--server-id") {
      ok = absl::SimpleHexAtoi(v, &cfg->server_id);
    } else if (k == "--runner-id") {
      ok = absl::SimpleHexAtoi(v, &cfg->runner_id);
    } else if (k == "--cluster-id") {
      ok = absl::SimpleHexAtoi(v, &cfg->cluster);
    } else if (k == "--removed-id") {
      ok = absl::SimpleHexAtoi(v, &cfg->removed);
    } else if (k == "--unknown-id") {
      ok = absl::SimpleHexAtoi(v, &cfg->unknown);
    } else if (k == "--require-resume") {
      cfg->require_resume = true;
    } else if (k == "--list") {
      cfg->list = true;
    } else {
      ok = false;
    }
    if (!ok) {
      std::fprintf(stderr, "runner: bad flag %s\n", argv[i]);
      return false;
    }
  }
  if (!cfg->list && cfg->server.empty() == cfg->exec.empty()) {
    std::fprintf(stderr, "runner: give exactly one of --server and --exec\n");
    return false;
  }
  return true;
}

int Main(int argc, char** argv) {
  Config cfg;
  if (!ParseFlags(argc, argv, &cfg)) return 2;
  if (cfg.list) {
    for (const auto& [name, c] : Runner::Cases()) std::printf("%s\n", name.c_str());
    return 0;
  }
  for (const std::string& c : cfg.cases) {
    const auto& all = Runner::Cases();
    if (std::none_of(all.begin(), all.end(), [&](const auto& p) { return p.first == c; })) {
      std::fprintf(stderr, "runner: no case %s (--list names them)\n", c.c_str());
      return 2;
    }
  }
  Inbox inbox;
  RunnerService service(cfg, &inbox);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(cfg.listen, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  builder.SetMaxReceiveMessageSize(16 << 20);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::fprintf(stderr, "runner: cannot listen on %s\n", cfg.listen.c_str());
    return 2;
  }
  const std::string host = cfg.listen.substr(0, cfg.listen.rfind(':'));
  const std::string runner_addr = absl::StrCat(host, ":", port);

  std::unique_ptr<testing::ChildProcess> node;
  std::string dir;
  if (!cfg.exec.empty()) {
    std::string tmpl =
        absl::StrCat(getenv("TEST_TMPDIR") ? getenv("TEST_TMPDIR") : "/tmp", "/conformance-XXXXXX");
    if (mkdtemp(tmpl.data()) == nullptr) return 2;
    dir = tmpl;
    std::vector<std::string> argv_node;
    for (absl::string_view a : absl::StrSplit(cfg.exec, ' ', absl::SkipEmpty())) {
      argv_node.push_back(absl::StrReplaceAll(a, {{"{RUNNER}", runner_addr}, {"{DIR}", dir}}));
    }
    node = std::make_unique<testing::ChildProcess>();
    if (!node->Start(argv_node)) {
      std::fprintf(stderr, "runner: cannot start %s\n", argv_node[0].c_str());
      return 2;
    }
    const std::string line = node->ReadLine(absl::Minutes(3));  // Go may compile first
    if (!absl::StartsWith(line, "PORT ")) {
      std::fprintf(stderr, "runner: the node said \"%s\", want \"PORT <n>\"\n", line.c_str());
      return 2;
    }
    cfg.server = absl::StrCat("127.0.0.1:", line.substr(5));
  }
  std::printf("conformance: node %s, runner %s (member %s, node %s, cluster %s)\n",
              cfg.server.c_str(), runner_addr.c_str(), Hex(cfg.runner_id).c_str(),
              Hex(cfg.server_id).c_str(), Hex(cfg.cluster).c_str());
  std::fflush(stdout);

  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(16 << 20);
  auto channel = grpc::CreateCustomChannel(cfg.server, grpc::InsecureChannelCredentials(), args);
  int passed = 0, failed = 0;
  {
    Runner runner(cfg, channel, &service, &inbox);
    for (const auto& [name, c] : Runner::Cases()) {
      if (!cfg.cases.empty() &&
          std::find(cfg.cases.begin(), cfg.cases.end(), name) == cfg.cases.end()) {
        continue;
      }
      inbox.Clear();
      const absl::Time start = absl::Now();
      Result r = runner.Run(c);
      const int64_t ms = absl::ToInt64Milliseconds(absl::Now() - start);
      if (r.ok) {
        ++passed;
        std::printf("PASS %s (%lld ms)%s%s\n", name.c_str(), static_cast<long long>(ms),
                    r.detail.empty() ? "" : ": ", r.detail.c_str());
      } else {
        ++failed;
        std::printf("FAIL %s (%lld ms): %s\n", name.c_str(), static_cast<long long>(ms),
                    r.detail.c_str());
      }
      std::fflush(stdout);
    }
  }
  std::printf("conformance: %d passed, %d failed\n", passed, failed);
  if (node != nullptr) {
    node->CloseStdin();
    const int code = node->WaitOrKill(absl::Seconds(10));
    if (code != 0) {
      std::printf("conformance: the node exited with %d after its stdin closed\n", code);
      ++failed;
    }
    std::system(absl::StrCat("rm -rf '", dir, "'").c_str());
  }
  server->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
  return failed == 0 ? 0 : 1;
}

}  // namespace
}  // namespace raftgrpc::conformance

int main(int argc, char** argv) { return raftgrpc::conformance::Main(argc, argv); }
