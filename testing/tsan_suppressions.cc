// TSan suppressions for tests that use gRPC. Debian's libgrpc is not
// instrumented, so the happens-before edges it creates (completion queues,
// absl::Mutex) are invisible, and the parts of gRPC inlined from its
// headers into our code look racy. Each entry names a gRPC-internal setup
// function whose writes are published to gRPC threads by libgrpc itself;
// none matches project code, whose own races are still reported.
extern "C" const char* __tsan_default_suppressions() {
  return "race:grpc::internal::CallbackWithSuccessTag::Set\n"
         // Unary callback plumbing; our callbacks it runs start with an
         // acquire (transport/handoff.h) and use std::mutex.
         "race:grpc::internal::CallbackWithStatusTag\n"
         "race:grpc::internal::CallbackUnaryCallImpl\n"
         "race:grpc::internal::CallbackWithInterceptionTag::Set\n"
         "race:grpc::internal::CallOpSet\n"
         "race:grpc::internal::InterceptorBatchMethodsImpl\n"
         "race:grpc::internal::ClientCallbackReaderWriterImpl\n"
         "race:grpc::internal::ClientCallbackReaderImpl\n"
         "race:grpc::internal::ClientCallbackWriterImpl\n"
         "race:grpc::internal::ClientCallbackUnaryImpl\n"
         "race:grpc::internal::CallbackBidiHandler\n"
         "race:grpc::internal::CallbackClientStreamingHandler\n"
         "race:grpc::internal::CallbackUnaryHandler\n"
         "race:grpc::internal::ServerCallbackCall\n"
         "race:grpc::ClientContext::set_call\n"
         "race:grpc::ClientContext::~ClientContext\n"
         "race:grpc::ServerContextBase\n"
         // A server's callback request objects are made by whichever thread
         // polls a completion queue when a call arrives (our snapshot
         // sender waits on its own queue) and used by gRPC's executor.
         "race:grpc::Server::CallbackRequest\n"
         // Our TLS certificate verifier (transport/tls.cc) is built by us
         // and destroyed when libgrpc drops its last (uninstrumented)
         // reference to the credentials options.
         "race:grpc_tls_credentials_options::~grpc_tls_credentials_options\n"
         // gRPC's own background threads (e.g. the callback CQ's
         // "nexting_thread") are not joined before exit by libgrpc.
         "thread:grpc_core::Thread::Thread\n";
}
