#include "server/etcd/lease_keepalive.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"

namespace jambalancer {
namespace {

// The stream's operations run one at a time (start, then write and read in
// turn), so the completion queue never holds more than one of them; these
// tags only make a stray event easy to spot when debugging.
void* const kStartTag = reinterpret_cast<void*>(1);
void* const kWriteTag = reinterpret_cast<void*>(2);
void* const kReadTag = reinterpret_cast<void*>(3);
void* const kFinishTag = reinterpret_cast<void*>(4);

constexpr absl::Duration kFirstRetry = absl::Milliseconds(50);

enum class Completion { kOk, kFailed, kTimedOut };

// Waits for the one pending operation until `deadline`.
Completion Await(grpc::CompletionQueue& queue, absl::Time deadline) {
  void* tag = nullptr;
  bool ok = false;
  switch (queue.AsyncNext(&tag, &ok, absl::ToChronoTime(deadline))) {
    case grpc::CompletionQueue::GOT_EVENT:
      return ok ? Completion::kOk : Completion::kFailed;
    case grpc::CompletionQueue::TIMEOUT:
      return Completion::kTimedOut;
    case grpc::CompletionQueue::SHUTDOWN:
      break;
  }
  return Completion::kFailed;
}

}  // namespace

LeaseKeepAlive::LeaseKeepAlive(etcdserverpb::Lease::Stub* stub,
                               int64_t lease_id, absl::Duration interval,
                               OnAck on_ack, OnError on_error)
    : stub_(stub),
      lease_id_(lease_id),
      interval_(interval),
      on_ack_(std::move(on_ack)),
      on_error_(std::move(on_error)),
      thread_([this] { Run(); }) {}

LeaseKeepAlive::~LeaseKeepAlive() { Stop(); }

void LeaseKeepAlive::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    if (context_ != nullptr) context_->TryCancel();
  }
  if (thread_.joinable()) thread_.join();
}

bool LeaseKeepAlive::WaitStopped(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(&stopping_), timeout);
  return stopping_;
}

void LeaseKeepAlive::Run() {
  absl::Duration retry = kFirstRetry;
  while (true) {
    absl::Status error;
    bool acked = false;
    switch (RunStream(&error, &acked)) {
      case StreamEnd::kStopped:
      case StreamEnd::kLeaseGone:
        return;
      case StreamEnd::kFailed:
        break;
    }
    on_error_(error);
    if (acked) retry = kFirstRetry;
    if (WaitStopped(retry)) return;
    retry = std::min(retry * 2, interval_);
  }
}

LeaseKeepAlive::StreamEnd LeaseKeepAlive::RunStream(absl::Status* error,
                                                    bool* acked) {
  grpc::ClientContext context;
  grpc::CompletionQueue queue;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return StreamEnd::kStopped;
    context_ = &context;
  }
  std::unique_ptr<
      grpc::ClientAsyncReaderWriter<etcdserverpb::LeaseKeepAliveRequest,
                                    etcdserverpb::LeaseKeepAliveResponse>>
      stream = stub_->PrepareAsyncLeaseKeepAlive(&context, &queue);

  StreamEnd end = StreamEnd::kFailed;
  stream->StartCall(kStartTag);
  Completion done = Await(queue, absl::Now() + interval_);
  if (done == Completion::kOk) {
    etcdserverpb::LeaseKeepAliveRequest request;
    request.set_id(lease_id_);
    etcdserverpb::LeaseKeepAliveResponse response;
    while (true) {
      const absl::Time sent = absl::Now();
      stream->Write(request, kWriteTag);
      done = Await(queue, sent + interval_);
      if (done != Completion::kOk) break;
      stream->Read(&response, kReadTag);
      done = Await(queue, sent + interval_);
      if (done != Completion::kOk) break;
      const absl::Duration ttl =
          absl::Seconds(std::max<int64_t>(response.ttl(), 0));
      *acked = true;
      on_ack_(Ack{sent, ttl});
      if (ttl == absl::ZeroDuration()) {
        end = StreamEnd::kLeaseGone;
        break;
      }
      absl::MutexLock lock(&mu_);
      if (mu_.AwaitWithDeadline(absl::Condition(&stopping_),
                                sent + interval_)) {
        end = StreamEnd::kStopped;
        break;
      }
    }
  }

  {
    absl::MutexLock lock(&mu_);
    context_ = nullptr;
    if (stopping_) end = StreamEnd::kStopped;
  }
  // A failed operation means the stream is over and Finish has its status;
  // otherwise end it here. An operation that timed out is still pending: it
  // completes (failed) once cancelled, and must, before the queue shuts down.
  if (done != Completion::kFailed) context.TryCancel();
  if (done == Completion::kTimedOut) Await(queue, absl::InfiniteFuture());
  grpc::Status status;
  stream->Finish(&status, kFinishTag);
  if (Await(queue, absl::Now() + interval_) == Completion::kTimedOut) {
    // A stream whose operation failed yet has no status: end it.
    context.TryCancel();
    Await(queue, absl::InfiniteFuture());
  }
  queue.Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (queue.Next(&tag, &ok)) {
  }

  if (end != StreamEnd::kFailed) return end;
  if (done == Completion::kTimedOut) {
    *error = absl::DeadlineExceededError(absl::StrCat(
        "etcd LeaseKeepAlive: no answer within ",
        absl::FormatDuration(interval_), " (lease ", lease_id_, ")"));
  } else if (status.ok()) {
    *error = absl::UnavailableError(absl::StrCat(
        "etcd LeaseKeepAlive: stream ended (lease ", lease_id_, ")"));
  } else {
    *error = absl::Status(
        static_cast<absl::StatusCode>(status.error_code()),
        absl::StrCat("etcd LeaseKeepAlive: ", status.error_message(),
                     " (lease ", lease_id_, ")"));
  }
  return end;
}

}  // namespace jambalancer
