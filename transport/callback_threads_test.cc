#include "transport/callback_threads.h"

#include <dirent.h>
#include <pthread.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/transport.grpc.pb.h"

namespace raftgrpc {
namespace {

// gRPC 1.51's callback threads, counted as the library counts them.
int CallbackThreads() {
  int n = 0;
  DIR* d = opendir("/proc/self/task");
  if (d == nullptr) return -1;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream comm(absl::StrCat("/proc/self/task/", e->d_name, "/comm"));
    std::string name;
    if (std::getline(comm, name) && name == "nexting_thread") ++n;
  }
  closedir(d);
  return n;
}

std::string ThreadName() {
  char name[16] = {};
  pthread_getname_np(pthread_self(), name, sizeof name);
  return name;
}

// Records which threads ran the server's reactions and the client's
// callbacks.
struct Threads {
  std::mutex mu;
  std::set<std::thread::id> ids;
  std::set<std::string> names;
  void Note() {
    std::lock_guard<std::mutex> l(mu);
    ids.insert(std::this_thread::get_id());
    names.insert(ThreadName());
  }
};

class ProbeService final : public v1::RaftTransport::CallbackService {
 public:
  explicit ProbeService(Threads* t) : threads_(t) {}
  grpc::ServerUnaryReactor* Probe(grpc::CallbackServerContext* ctx, const v1::ProbeRequest*,
                                  v1::ProbeResponse*) override {
    threads_->Note();
    auto* r = ctx->DefaultReactor();
    r->Finish(grpc::Status::OK);
    return r;
  }

 private:
  Threads* threads_;
};

// A callback-API server on 127.0.0.1:0 and a channel to it.
struct LocalServer {
  explicit LocalServer(Threads* t) : service(t) {
    grpc::ServerBuilder b;
    int port = 0;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    b.RegisterService(&service);
    server = b.BuildAndStart();
    channel =
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials());
    stub = v1::RaftTransport::NewStub(channel);
  }
  ~LocalServer() { server->Shutdown(std::chrono::system_clock::now()); }

  // `n` calls at once on the callback API; returns how many succeeded.
  int Calls(int n, Threads* client_threads) {
    struct One {
      grpc::ClientContext ctx;
      v1::ProbeRequest req;
      v1::ProbeResponse resp;
    };
    std::vector<std::unique_ptr<One>> calls;
    std::mutex mu;
    std::condition_variable cv;
    int done, ok;
    {
      // Under the lock: TSan does not see gRPC hand the callbacks over.
      std::lock_guard<std::mutex> l(mu);
      done = ok = 0;
    }
    for (int i = 0; i < n; ++i) {
      calls.push_back(std::make_unique<One>());
      One* c = calls.back().get();
      c->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
      stub->async()->Probe(&c->ctx, &c->req, &c->resp, [&](grpc::Status s) {
        client_threads->Note();
        std::lock_guard<std::mutex> l(mu);
        ++done;
        if (s.ok()) ++ok;
        cv.notify_all();
      });
    }
    std::unique_lock<std::mutex> l(mu);
    cv.wait(l, [&] { return done == n; });  // every call has a deadline
    return ok;
  }

  ProbeService service;
  std::unique_ptr<grpc::Server> server;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::RaftTransport::Stub> stub;
};

// First, while nothing else in the process uses gRPC: letting go then also
// ends gRPC's callback threads (its last user joins them), which hangs for
// good if a thread is still parked.
TEST(OneCallbackThreadTest, LetsGoWhenNothingElseUsesGrpc) {
  std::vector<std::string> lines;
  auto one = OneCallbackThread::Hold([&](const std::string& l) { lines.push_back(l); });
  const int threads = CallbackThreads();
  ASSERT_GE(threads, 2) << "gRPC 1.51 runs at least two callback threads";
  EXPECT_EQ(OneCallbackThread::parked(), threads - 1);
  one.reset();
  EXPECT_EQ(OneCallbackThread::parked(), 0);
  EXPECT_TRUE(lines.empty()) << lines.front();
}

TEST(OneCallbackThreadTest, EveryCallbackRunsOnOneThreadWhileHeld) {
  Threads server_threads, client_threads;
  LocalServer s(&server_threads);
  {
    auto one = OneCallbackThread::Hold();
    ASSERT_EQ(OneCallbackThread::parked(), CallbackThreads() - 1);
    ASSERT_GE(OneCallbackThread::parked(), 1);
    EXPECT_EQ(s.Calls(200, &client_threads), 200);
    std::set<std::thread::id> all = server_threads.ids;
    all.insert(client_threads.ids.begin(), client_threads.ids.end());
    EXPECT_EQ(all.size(), 1u);
    EXPECT_EQ(server_threads.names, std::set<std::string>{"nexting_thread"});
  }
  EXPECT_EQ(OneCallbackThread::parked(), 0);
  // The parked threads are back: calls still complete, and parking again
  // finds the whole pool.
  EXPECT_EQ(s.Calls(200, &client_threads), 200);
  auto again = OneCallbackThread::Hold();
  EXPECT_EQ(OneCallbackThread::parked(), CallbackThreads() - 1);
}

TEST(OneCallbackThreadTest, TheLastHolderLetsGo) {
  Threads server_threads;
  LocalServer s(&server_threads);
  auto a = OneCallbackThread::Hold();
  const int parked = OneCallbackThread::parked();
  ASSERT_GE(parked, 1);
  auto b = OneCallbackThread::Hold();
  EXPECT_EQ(OneCallbackThread::parked(), parked);  // not one more: that would be the last
  a.reset();
  EXPECT_EQ(OneCallbackThread::parked(), parked);
  b.reset();
  EXPECT_EQ(OneCallbackThread::parked(), 0);
}

// Holders on many threads at once, as transports of one test process may.
TEST(OneCallbackThreadTest, HoldersOnManyThreads) {
  Threads server_threads, client_threads;
  LocalServer s(&server_threads);
  std::vector<std::thread> ts;
  for (int i = 0; i < 8; ++i) {
    ts.emplace_back([&] {
      for (int j = 0; j < 20; ++j) OneCallbackThread::Hold().reset();
    });
  }
  auto held = OneCallbackThread::Hold();
  for (auto& t : ts) t.join();
  EXPECT_EQ(OneCallbackThread::parked(), CallbackThreads() - 1);
  EXPECT_EQ(s.Calls(50, &client_threads), 50);
  held.reset();
  EXPECT_EQ(OneCallbackThread::parked(), 0);
}

}  // namespace
}  // namespace raftgrpc
