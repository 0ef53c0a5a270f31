// ThreadSanitizer builds only (tools/sanitize.sh tsan): makes Abseil's
// synchronization visible to TSan.
//
// Debian's Abseil is not built with TSan, so absl::Mutex, absl::CondVar and
// absl::Notification lock, wait and wake inside an uninstrumented shared
// library (atomics and futexes): TSan sees no happens-before edge between a
// thread that unlocks a mutex and the next one that locks it, and reports
// every access guarded by it as a race. This file defines those member
// functions in the executable, which interposes them over the library's
// (for our calls and for gRPC's, which go through the PLT too): each calls
// the library's own function (found with dlsym(RTLD_NEXT)) and adds exactly
// the edge the primitive guarantees: a release on the object before it is
// unlocked, waited on or notified, an acquire after it is locked, waited on
// or found notified. It changes no behavior and hides no race between
// accesses that these primitives do not order.

#include <dlfcn.h>
#include <sanitizer/tsan_interface.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/base/options.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

#define JAM_TSAN_STRINGIFY_(x) #x
#define JAM_TSAN_STRINGIFY(x) JAM_TSAN_STRINGIFY_(x)

namespace {

// The library's definition of a member of absl's inline namespace, by the
// rest of its mangled name, e.g. "5Mutex4LockEv" (K: a const member).
template <typename Function>
Function Real(const char* rest, bool is_const = false) {
  const char* ns = JAM_TSAN_STRINGIFY(ABSL_OPTION_INLINE_NAMESPACE_NAME);
  const std::string name = std::string(is_const ? "_ZNK4absl" : "_ZN4absl") +
                           std::to_string(std::strlen(ns)) + ns + rest;
  void* symbol = dlsym(RTLD_NEXT, name.c_str());
  if (symbol == nullptr) {
    std::fprintf(stderr, "tsan_absl_sync: %s not found\n", name.c_str());
    std::abort();
  }
  return reinterpret_cast<Function>(symbol);
}

using absl::Condition;
using absl::CondVar;
using absl::Duration;
using absl::Mutex;
using absl::Notification;
using absl::Time;

void Acquire(const void* object) { __tsan_acquire(const_cast<void*>(object)); }
void Release(const void* object) { __tsan_release(const_cast<void*>(object)); }

// Notification::HasBeenNotified is inline (compiled with TSan): it loads
// `notified_yet_` with acquire order, which synchronizes with a release on
// that atomic's address. It follows the mutex (notification.h).
static_assert(sizeof(Notification) == 2 * sizeof(Mutex));
const void* NotifiedFlagOf(const Notification* n) {
  return reinterpret_cast<const char*>(n) + sizeof(Mutex);
}

// A condition that first acquires `mu`: Mutex evaluates a waiter's
// condition inside the library once it holds the lock (on the waiting
// thread or on the one unlocking), before the hooks below return, so the
// condition's reads need the edge already. The library hands the wrapper
// to the evaluating thread through its own (unseen) queue, so the
// wrapper's construction is not recorded (With, below); the waiter
// releases `mu` before waiting, as entering that queue does.
class AcquiringCondition {
 public:
  AcquiringCondition(const Condition& cond, const Mutex* mu)
      : cond_(cond), mu_(mu), acquiring_(&AcquiringCondition::Eval, this) {}
  const Condition& get() const { return acquiring_; }

 private:
  // Runs holding the lock; releases again in case the library goes back
  // to waiting (unlocking inside, unseen).
  static bool Eval(AcquiringCondition* self) {
    Acquire(self->mu_);
    const bool met = self->cond_.Eval();
    Release(self->mu_);
    return met;
  }
  const Condition& cond_;
  const Mutex* const mu_;
  const Condition acquiring_;
};

extern "C" void AnnotateIgnoreWritesBegin(const char* file, int line);
extern "C" void AnnotateIgnoreWritesEnd(const char* file, int line);

// Calls `wait(condition)` with `cond` wrapped for `mu`.
template <typename Wait>
auto With(const Condition& cond, Mutex* mu, Wait wait) {
  AnnotateIgnoreWritesBegin(__FILE__, __LINE__);
  const AcquiringCondition wrapped(cond, mu);
  AnnotateIgnoreWritesEnd(__FILE__, __LINE__);
  Release(mu);
  return wait(wrapped.get());
}

}  // namespace

namespace absl {
ABSL_NAMESPACE_BEGIN

void Mutex::Lock() {
  static const auto real = Real<void (*)(Mutex*)>("5Mutex4LockEv");
  real(this);
  Acquire(this);
}

void Mutex::ReaderLock() {
  static const auto real = Real<void (*)(Mutex*)>("5Mutex10ReaderLockEv");
  real(this);
  Acquire(this);
}

bool Mutex::TryLock() {
  static const auto real = Real<bool (*)(Mutex*)>("5Mutex7TryLockEv");
  const bool locked = real(this);
  if (locked) Acquire(this);
  return locked;
}

bool Mutex::ReaderTryLock() {
  static const auto real = Real<bool (*)(Mutex*)>("5Mutex13ReaderTryLockEv");
  const bool locked = real(this);
  if (locked) Acquire(this);
  return locked;
}

void Mutex::Unlock() {
  static const auto real = Real<void (*)(Mutex*)>("5Mutex6UnlockEv");
  Release(this);
  real(this);
}

void Mutex::ReaderUnlock() {
  static const auto real = Real<void (*)(Mutex*)>("5Mutex12ReaderUnlockEv");
  Release(this);
  real(this);
}

void Mutex::LockWhen(const Condition& cond) {
  static const auto real = Real<void (*)(Mutex*, const Condition&)>(
      "5Mutex8LockWhenERKNS0_9ConditionE");
  With(cond, this, [&](const Condition& c) { return real(this, c); });
  Acquire(this);
}

void Mutex::ReaderLockWhen(const Condition& cond) {
  static const auto real = Real<void (*)(Mutex*, const Condition&)>(
      "5Mutex14ReaderLockWhenERKNS0_9ConditionE");
  With(cond, this, [&](const Condition& c) { return real(this, c); });
  Acquire(this);
}

bool Mutex::LockWhenWithTimeout(const Condition& cond, Duration timeout) {
  static const auto real = Real<bool (*)(Mutex*, const Condition&, Duration)>(
      "5Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  const bool met = With(
      cond, this, [&](const Condition& c) { return real(this, c, timeout); });
  Acquire(this);  // Held either way.
  return met;
}

bool Mutex::LockWhenWithDeadline(const Condition& cond, Time deadline) {
  static const auto real = Real<bool (*)(Mutex*, const Condition&, Time)>(
      "5Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  const bool met = With(
      cond, this, [&](const Condition& c) { return real(this, c, deadline); });
  Acquire(this);
  return met;
}

bool Mutex::ReaderLockWhenWithTimeout(const Condition& cond, Duration timeout) {
  static const auto real = Real<bool (*)(Mutex*, const Condition&, Duration)>(
      "5Mutex25ReaderLockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  const bool met = With(
      cond, this, [&](const Condition& c) { return real(this, c, timeout); });
  Acquire(this);
  return met;
}

bool Mutex::ReaderLockWhenWithDeadline(const Condition& cond, Time deadline) {
  static const auto real = Real<bool (*)(Mutex*, const Condition&, Time)>(
      "5Mutex26ReaderLockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  const bool met = With(
      cond, this, [&](const Condition& c) { return real(this, c, deadline); });
  Acquire(this);
  return met;
}

// Await releases the mutex while it waits and holds it again on return.
void Mutex::Await(const Condition& cond) {
  static const auto real = Real<void (*)(Mutex*, const Condition&)>(
      "5Mutex5AwaitERKNS0_9ConditionE");
  With(cond, this, [&](const Condition& c) { return real(this, c); });
  Acquire(this);
}

bool Mutex::AwaitWithTimeout(const Condition& cond, Duration timeout) {
  static const auto real = Real<bool (*)(Mutex*, const Condition&, Duration)>(
      "5Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  const bool met = With(
      cond, this, [&](const Condition& c) { return real(this, c, timeout); });
  Acquire(this);
  return met;
}

bool Mutex::AwaitWithDeadline(const Condition& cond, Time deadline) {
  static const auto real = Real<bool (*)(Mutex*, const Condition&, Time)>(
      "5Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  const bool met = With(
      cond, this, [&](const Condition& c) { return real(this, c, deadline); });
  Acquire(this);
  return met;
}

// CondVar waits release `mu` and hold it again on return.
void CondVar::Wait(Mutex* mu) {
  static const auto real =
      Real<void (*)(CondVar*, Mutex*)>("7CondVar4WaitEPNS0_5MutexE");
  Release(mu);
  real(this, mu);
  Acquire(mu);
}

bool CondVar::WaitWithTimeout(Mutex* mu, Duration timeout) {
  static const auto real = Real<bool (*)(CondVar*, Mutex*, Duration)>(
      "7CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE");
  Release(mu);
  const bool timed_out = real(this, mu, timeout);
  Acquire(mu);
  return timed_out;
}

bool CondVar::WaitWithDeadline(Mutex* mu, Time deadline) {
  static const auto real = Real<bool (*)(CondVar*, Mutex*, Time)>(
      "7CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE");
  Release(mu);
  const bool timed_out = real(this, mu, deadline);
  Acquire(mu);
  return timed_out;
}

void Notification::Notify() {
  static const auto real =
      Real<void (*)(Notification*)>("12Notification6NotifyEv");
  Release(this);
  Release(NotifiedFlagOf(this));
  real(this);
}

void Notification::WaitForNotification() const {
  static const auto real = Real<void (*)(const Notification*)>(
      "12Notification19WaitForNotificationEv", /*is_const=*/true);
  real(this);
  Acquire(this);
}

bool Notification::WaitForNotificationWithTimeout(Duration timeout) const {
  static const auto real = Real<bool (*)(const Notification*, Duration)>(
      "12Notification30WaitForNotificationWithTimeoutENS0_8DurationE",
      /*is_const=*/true);
  const bool notified = real(this, timeout);
  if (notified) Acquire(this);
  return notified;
}

bool Notification::WaitForNotificationWithDeadline(Time deadline) const {
  static const auto real = Real<bool (*)(const Notification*, Time)>(
      "12Notification31WaitForNotificationWithDeadlineENS0_4TimeE",
      /*is_const=*/true);
  const bool notified = real(this, deadline);
  if (notified) Acquire(this);
  return notified;
}

ABSL_NAMESPACE_END
}  // namespace absl
