// TSan suppressions for tests that use gRPC. Debian's libgrpc is not
// instrumented, so the happens-before edges it creates (completion queues,
// absl::Mutex) are invisible, and gRPC's code inlined from its headers
// into our binaries looks racy.
//
// The rule. A `race:` entry matches any frame of either access's stack, so
// it may only name gRPC functions that never call back into project code:
// constructors, Set/Clear, Bind*, the CallOp* operations. gRPC functions
// that run our reactions (the reactor implementations' lambdas, Run and
// StaticRun, MaybeDone, the server's CallbackRequest) appear only as
// `race_top:`, which matches the top frame alone. Until 2026-12-02 they
// were `race:` entries, and every race inside our reactions went
// unreported; testing/tsan_probe_test fails if that comes back. A hand-off
// through libgrpc between two pieces of our own code is made visible with
// transport/internal/handoff.h, not suppressed.
extern "C" const char* __tsan_default_suppressions() {
  return
      // Top frame only: gRPC's own fields, read or written by its inlined
      // code, or by the functions that go on to run our reactions. There
      // is no entry for the whole header path (/usr/include/grpcpp/) any
      // more: it also hid races on gRPC objects of ours (a ByteBuffer, a
      // Status) touched through gRPC's inline methods, and the full TSan
      // suite reported nothing without it (twice, 2026-12-02).
      "race_top:grpc::internal::CallbackWithSuccessTag::StaticRun\n"
      "race_top:grpc::internal::CallbackWithStatusTag\n"
      // Named by what libgrpc's threads run, not by class: a class-wide
      // entry (until 2026-12-02, e.g. ClientCallbackReaderWriterImpl) also
      // covered the inline methods our threads call (StartWrite's Write,
      // Read, StartCall, Finish), so two of our threads racing there went
      // unreported. What gRPC runs of these classes is the lambdas their
      // tags hold (any method's: `*::{lambda`, also as std::function's
      // _M_invoke), MaybeFinish and CallOnDone; each pairs with our
      // reactor's set-up or with gRPC's own fields. Found by full TSan
      // suite runs without the class entries.
      "race_top:grpc::internal::ClientCallbackReaderWriterImpl<*>::*::{lambda\n"
      "race_top:grpc::internal::ClientCallbackReaderWriterImpl<*>::MaybeFinish\n"
      "race_top:::ServerCallbackReaderWriterImpl::*::{lambda\n"
      "race_top:::ServerCallbackReaderWriterImpl::CallOnDone\n"
      "race_top:::ServerCallbackReaderImpl::*::{lambda\n"
      "race_top:::ServerCallbackReaderImpl::CallOnDone\n"
      "race_top:::ServerCallbackUnaryImpl::*::{lambda\n"
      "race_top:::ServerCallbackUnaryImpl::CallOnDone\n"
      "race_top:::ServerCallbackUnaryImpl::~ServerCallbackUnaryImpl\n"
      // The handlers' RunHandler, and the lambdas it binds: gRPC's side of
      // a call's start (a reactor that finishes at once, too).
      "race_top:grpc::internal::CallbackUnaryHandler<*>::RunHandler\n"
      "race_top:grpc::internal::CallbackBidiHandler<*>::RunHandler\n"
      "race_top:grpc::internal::CallbackClientStreamingHandler<*>::RunHandler\n"
      "race_top:grpc::internal::CallbackUnaryHandler<*>::Deserialize\n"
      "race_top:grpc::ServerContextBase::Reactor::Reactor\n"
      "race_top:grpc::ServerBidiReactor<*>::~ServerBidiReactor\n"
      // A server's callback request objects are made by whichever thread
      // polls a completion queue when a call arrives (our snapshot
      // sender waits on its own queue) and used by gRPC's executor.
      "race_top:grpc::Server::CallbackRequest\n"
      // Any frame: gRPC-internal set-up and tear-down that calls none of
      // our code; libgrpc publishes what it writes.
      "race:grpc::internal::CallbackWithSuccessTag::Set\n"
      "race:grpc::internal::CallbackWithSuccessTag::CallbackWithSuccessTag\n"
      "race:grpc::internal::CallbackWithSuccessTag::Clear\n"
      "race:grpc::internal::CallbackWithSuccessTag::~CallbackWithSuccessTag\n"
      "race:grpc::internal::CallbackWithInterceptionTag::Set\n"
      "race:grpc::internal::CallbackWithStatusTag::CallbackWithStatusTag\n"
      // Builds the unary call and its tag; our callback is run by
      // CallbackWithStatusTag::Run, not from here.
      "race:grpc::internal::CallbackUnaryCallImpl\n"
      "race:grpc::internal::CallOpSet\n"
      "race:grpc::internal::InterceptorBatchMethodsImpl\n"  // we add no interceptors
      "race:grpc::internal::DefaultMessageHolder\n"
      "race:grpc::ServerUnaryReactor::InternalBindCall\n"
      "race:grpc::ServerUnaryReactor::Finish\n"
      "race:grpc::internal::FinishOnlyReactor\n"
      "race:grpc::ServerBidiReactor<*>::InternalBindStream\n"
      "race:grpc::ServerReadReactor<*>::InternalBindReader\n"
      "race:grpc::ClientBidiReactor<*>::InternalBindStream\n"
      "race:PreBindBacklog\n"
      "race:grpc::ServerCallbackReaderWriter<*>::BindReactor\n"
      "race:grpc::ServerCallbackReader<*>::BindReactor\n"
      "race:grpc::ServerCallbackUnary::BindReactor\n"
      // Constructors only: `(*)$` ends at the first `)` after the name, so
      // it does not match the lambdas defined in the constructor, which run
      // our reactions (TSan's templates take `*` and a final `$`). The
      // handlers' implementations' constructors define no lambdas.
      "race:grpc::internal::ServerCallbackCall::ServerCallbackCall()$\n"
      "race:grpc::internal::ClientCallbackReaderWriterImpl<*>::ClientCallbackReaderWriterImpl(*)$\n"
      "race:grpc::internal::CallbackBidiHandler<*>::ServerCallbackReaderWriterImpl::"
      "ServerCallbackReaderWriterImpl(\n"
      "race:grpc::internal::CallbackClientStreamingHandler<*>::ServerCallbackReaderImpl::"
      "ServerCallbackReaderImpl(\n"
      "race:grpc::internal::CallbackUnaryHandler<*>::ServerCallbackUnaryImpl::"
      "ServerCallbackUnaryImpl(\n"
      // The generated service's constructors register its handlers, which
      // gRPC's threads call once the server has started.
      "race:RaftTransport::With*CallbackMethod_*()$\n"
      "race:grpc::ClientContext::set_call\n"
      "race:grpc::ClientContext::~ClientContext\n"
      // Our TLS certificate verifier (transport/tls.cc) is built by us
      // and destroyed when libgrpc drops its last (uninstrumented)
      // reference to the credentials options.
      "race:grpc_tls_credentials_options::~grpc_tls_credentials_options\n"
      // gRPC's own background threads (e.g. the callback CQ's
      // "nexting_thread") are not joined before exit by libgrpc.
      "thread:grpc_core::Thread::Thread\n";
}
