// Benchmarks of every JamCollection operation at 1e3, 1e5 and 1e6 jams, plus
// the linear scan the original app did on every request, for comparison, and
// the heap bytes the collection holds per user.
//
// The population: jam ids and user ids are random lowercase UUIDs (36 chars),
// jam sizes are uniform over 1..7 with max_users 7 (about 1 jam in 7 is full,
// the rest have room, 4 users per jam on average). Every user is a member of
// one jam only, as the collection requires; spare user ids are in none. The
// population is built once per size (GetPopulation) and shared by all
// benchmarks of that size, so every benchmark leaves the collection as it
// found it, with no reservations; each checks so at the end.
//
// Time: every call is made at the same instant, kNow, so no reservation
// expires on its own. Only BM_ExpireReservations passes a later time, to
// expire the reservations it made.
//
// Access is random: a benchmark picks a jam from the pre-built id arrays with
// a cheap PRNG, so the loop measures the collection, not id generation. At 1e6
// jams most lookups miss the CPU caches, as they would in the server. Seats
// are reserved where the collection puts them: in the fullest jams with room,
// the same few jams every time, as in the server.
//
// Reading the output: the counter time_per_op is the time of ONE collection
// call. It differs from the Time column where an iteration makes more than
// one call: two in RemoveUserThenAddUser, Refresh_FillAndRestore and
// ReserveSeatThenRelease (the second call undoes the first); a batch of 64 in
// AddUser_WithRoom, RemoveUser and ReserveSeat, and 64 pairs in
// ReserveSeatThenAddUser, which time themselves (manual_time) so that the
// calls undoing each batch are not counted. BM_ExpireReservations times one
// call that expires 64 reservations; time_per_expiry divides by them.
// ListJams: one call lists one page of 100 jams; time_per_jam divides by the
// jams listed. BM_Memory times nothing; its counters are heap bytes (malloc's
// count, overhead included) and the time the population took to build, one
// AddUser per user.
//
// BM_PoolsInParallel is of another kind: N pools (each a collection on its
// own thread, as each pool of the server has its own strand) running the
// same batch work at once; its items_per_second is all pools' operations
// per second of wall time.
//
// Run a Release build; see bench/CMakeLists.txt.

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "benchmark/benchmark.h"
#include "server/core/jam_collection.h"

namespace jambalancer {
namespace {

constexpr uint32_t kMaxUsers = 7;
constexpr size_t kIdLength = 36;      // A UUID in canonical form.
constexpr size_t kSpareUsers = 4096;  // Ids never stored in the collection.
constexpr size_t kPageSize = 100;     // ListJams limit.

// The instant of every call (2024-01-01 UTC). Reservations last kTtl (the
// server's default), so none expires before BM_ExpireReservations.
constexpr absl::Time kNow = absl::FromUnixSeconds(1704067200);
constexpr absl::Duration kTtl = absl::Seconds(15);

// splitmix64: a few cycles per number, good enough to pick jams and make ids.
class FastRandom {
 public:
  explicit FastRandom(uint64_t seed) : state_(seed) {}

  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9;
    z = (z ^ (z >> 27)) * 0x94d049bb133111eb;
    return z ^ (z >> 31);
  }

  // Uniform in [0, n) by multiply-shift (no division).
  uint32_t Below(uint32_t n) {
    return static_cast<uint32_t>(((Next() >> 32) * n) >> 32);
  }

 private:
  uint64_t state_;
};

// Appends a random lowercase UUID v4, like the ids clients send.
void AppendUuid(FastRandom& random, std::string& out) {
  uint8_t bytes[16];
  const uint64_t words[2] = {random.Next(), random.Next()};
  for (int i = 0; i < 16; ++i) {
    bytes[i] = static_cast<uint8_t>(words[i / 8] >> (8 * (i % 8)));
  }
  bytes[6] = (bytes[6] & 0x0f) | 0x40;  // Version 4.
  bytes[8] = (bytes[8] & 0x3f) | 0x80;  // RFC 4122 variant.
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(kHex[bytes[i] >> 4]);
    out.push_back(kHex[bytes[i] & 0x0f]);
  }
}

// Bytes malloc has handed out and not yet got back (heap and mmapped chunks,
// with malloc's own per-chunk overhead). Single-threaded use: main arena.
size_t HeapBytesInUse() {
#if defined(__GLIBC__)
  const struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;
#else
  return 0;
#endif
}

// A populated collection and the ids that were put into it, kept in flat
// arrays so the timed loops can address existing jams and users cheaply.
class Population {
 public:
  explicit Population(size_t jam_count);

  Population(const Population&) = delete;
  Population& operator=(const Population&) = delete;

  JamCollection& collection() { return collection_; }
  const CollectionSnapshot& initial_stats() const { return initial_stats_; }
  uint32_t jam_count() const {
    return static_cast<uint32_t>(user_begin_.size() - 1);
  }

  absl::string_view JamId(uint32_t jam) const {
    return absl::string_view(jam_chars_).substr(jam * kIdLength, kIdLength);
  }
  uint32_t UserCount(uint32_t jam) const {
    return user_begin_[jam + 1] - user_begin_[jam];
  }
  // REQUIRES: k < UserCount(jam).
  absl::string_view UserId(uint32_t jam, uint32_t k) const {
    return absl::string_view(user_chars_)
        .substr(size_t{user_begin_[jam] + k} * kIdLength, kIdLength);
  }
  // A user id that is in no jam; k is taken modulo kSpareUsers.
  absl::string_view SpareUserId(size_t k) const {
    return absl::string_view(spare_user_chars_)
        .substr((k % kSpareUsers) * kIdLength, kIdLength);
  }

  // Indexes of the jams with fewer than kMaxUsers users, and of the full ones.
  const std::vector<uint32_t>& jams_with_room() const {
    return jams_with_room_;
  }
  const std::vector<uint32_t>& full_jams() const { return full_jams_; }
  // Jam ids after which at least kPageSize jams follow (ListJams starts).
  const std::vector<absl::string_view>& page_starts() const {
    return page_starts_;
  }

  // Heap bytes the collection holds, and how long it took to build (one
  // AddUser per user).
  size_t collection_bytes() const { return collection_bytes_; }
  double build_seconds() const { return build_seconds_; }

 private:
  std::string jam_chars_;             // kIdLength chars per jam, back to back.
  std::string user_chars_;            // kIdLength chars per user, by jam.
  std::vector<uint32_t> user_begin_;  // Jam i: users [begin[i], begin[i+1]).
  std::string spare_user_chars_;
  std::vector<uint32_t> jams_with_room_;
  std::vector<uint32_t> full_jams_;
  std::vector<absl::string_view> page_starts_;
  JamCollection collection_{kMaxUsers};
  CollectionSnapshot initial_stats_;
  size_t collection_bytes_ = 0;
  double build_seconds_ = 0;
};

Population::Population(size_t jam_count) {
  FastRandom random(0x6a616d2d62616c00 + jam_count);
  jam_chars_.reserve(jam_count * kIdLength);
  user_chars_.reserve(jam_count * (kMaxUsers + 1) / 2 * kIdLength);
  user_begin_.reserve(jam_count + 1);
  user_begin_.push_back(0);
  for (uint32_t jam = 0; jam < jam_count; ++jam) {
    AppendUuid(random, jam_chars_);
    const uint32_t users = 1 + random.Below(kMaxUsers);
    for (uint32_t k = 0; k < users; ++k) AppendUuid(random, user_chars_);
    user_begin_.push_back(user_begin_.back() + users);
    (users < kMaxUsers ? jams_with_room_ : full_jams_).push_back(jam);
  }
  spare_user_chars_.reserve(kSpareUsers * kIdLength);
  for (size_t k = 0; k < kSpareUsers; ++k) {
    AppendUuid(random, spare_user_chars_);
  }
  page_starts_.reserve(jam_count);
  for (uint32_t jam = 0; jam < jam_count; ++jam) {
    page_starts_.push_back(JamId(jam));
  }
  std::sort(page_starts_.begin(), page_starts_.end());
  page_starts_.resize(jam_count > kPageSize ? jam_count - kPageSize : 1);

  // Users arrive one by one, as in the server, and in the same order for
  // every jam; only the collection allocates between the two readings.
  const size_t bytes_before = HeapBytesInUse();
  const auto start = std::chrono::steady_clock::now();
  for (uint32_t jam = 0; jam < jam_count; ++jam) {
    for (uint32_t k = 0; k < UserCount(jam); ++k) {
      collection_.AddUser(JamId(jam), UserId(jam, k), kNow);
    }
  }
  build_seconds_ =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  collection_bytes_ = HeapBytesInUse() - bytes_before;
  initial_stats_ = collection_.Snapshot(kNow);
}

// The population of each size, built on first use and kept for the whole run
// (building 1e6 jams takes seconds; every benchmark of that size reuses it).
Population& GetPopulation(int64_t jam_count) {
  static auto* const cache = new std::map<int64_t, std::unique_ptr<Population>>;
  std::unique_ptr<Population>& population = (*cache)[jam_count];
  if (population == nullptr) {
    population = std::make_unique<Population>(static_cast<size_t>(jam_count));
  }
  return *population;
}

void JamCounts(benchmark::internal::Benchmark* b) {
  b->ArgName("jams")->Arg(1000)->Arg(100000)->Arg(1000000);
}

// Adds the counter time_per_op: the time of one collection call, i.e. the
// benchmark's time (CPU time, or the manual time where the benchmark times
// itself) / (iterations * calls per iteration).
void ReportTimePerOp(benchmark::State& state, int calls_per_iteration) {
  // A rate counter is divided by the time; inverted, it is time per unit.
  state.counters["time_per_op"] = benchmark::Counter(
      calls_per_iteration, benchmark::Counter::kIsIterationInvariantRate |
                               benchmark::Counter::kInvert);
}

// Fails the benchmark if it left the shared collection changed.
void CheckUnchanged(benchmark::State& state, Population& population) {
  const CollectionSnapshot now = population.collection().Snapshot(kNow);
  const CollectionSnapshot& then = population.initial_stats();
  if (now.jam_count != then.jam_count || now.user_count != then.user_count ||
      now.full_jam_count != then.full_jam_count ||
      now.reservation_count != then.reservation_count) {
    state.SkipWithError("the benchmark changed the collection");
  }
}

void BM_CurrentJam(benchmark::State& state) {
  Population& population = GetPopulation(state.range(0));
  JamCollection& collection = population.collection();
  for (auto _ : state) {
    CurrentJamResult result = collection.CurrentJam(kNow);
    benchmark::DoNotOptimize(result);
  }
  ReportTimePerOp(state, 1);
  CheckUnchanged(state, population);
}
BENCHMARK(BM_CurrentJam)->Apply(JamCounts);

// The original app's CurrentJam: look at every jam on every call. A vector of
// (id, size) pairs with the ids in one flat array is the fastest form such a
// scan can take (the original walked a hash map of user sets), so the ratio
// to BM_CurrentJam is a lower bound.
struct JamSize {
  absl::string_view jam_id;
  uint32_t user_count;
};

CurrentJamResult LinearScanCurrentJam(const std::vector<JamSize>& jams,
                                      uint32_t max_users) {
  const JamSize* best = nullptr;
  for (const JamSize& jam : jams) {
    if (jam.user_count >= max_users) continue;
    if (best == nullptr || jam.user_count > best->user_count ||
        (jam.user_count == best->user_count && jam.jam_id < best->jam_id)) {
      best = &jam;
    }
  }
  if (best == nullptr) return {"", 0, /*new_jam=*/true};
  return {std::string(best->jam_id), best->user_count, /*new_jam=*/false};
}

void BM_CurrentJam_LinearScan(benchmark::State& state) {
  Population& population = GetPopulation(state.range(0));
  std::vector<JamSize> jams;
  jams.reserve(population.jam_count());
  for (uint32_t jam = 0; jam < population.jam_count(); ++jam) {
    jams.push_back({population.JamId(jam), population.UserCount(jam)});
  }
  const CurrentJamResult expected = population.collection().CurrentJam(kNow);
  const CurrentJamResult scanned = LinearScanCurrentJam(jams, kMaxUsers);
  if (scanned.jam_id != expected.jam_id ||
      scanned.user_count != expected.user_count) {
    state.SkipWithError("the linear scan disagrees with CurrentJam");
    return;
  }
  for (auto _ : state) {
    CurrentJamResult result = LinearScanCurrentJam(jams, kMaxUsers);
    benchmark::DoNotOptimize(result);
  }
  ReportTimePerOp(state, 1);
}
BENCHMARK(BM_CurrentJam_LinearScan)->Apply(JamCounts);

// A jam host's heartbeat: a full jam reports its max_users users, unchanged.
void BM_Refresh(benchmark::State& state) {
  Population& population = GetPopulation(state.range(0));
  JamCollection& collection = population.collection();
  const std::vector<uint32_t>& jams = population.full_jams();
  FastRandom random(1);
  std::array<absl::string_view, kMaxUsers> user_ids;
  for (auto _ : state) {
    const uint32_t jam = jams[random.Below(static_cast<uint32_t>(jams.size()))];
    for (uint32_t k = 0; k < kMaxUsers; ++k) {
      user_ids[k] = population.UserId(jam, k);
    }
    benchmark::DoNotOptimize(
        collection.Refresh(population.JamId(jam), user_ids, kNow));
  }
  ReportTimePerOp(state, 1);
  CheckUnchanged(state, population);
}
BENCHMARK(BM_Refresh)->Apply(JamCounts);

// Two Refresh calls that change the jam's size, so both re-index it: a jam
// with room is filled to max_users (its users and new ones), then set back to
// its own users.
void BM_Refresh_FillAndRestore(benchmark::State& state) {
  Population& population = GetPopulation(state.range(0));
  JamCollection& collection = population.collection();
  const std::vector<uint32_t>& jams = population.jams_with_room();
  FastRandom random(2);
  size_t spare = 0;
  std::array<absl::string_view, kMaxUsers> user_ids;
  for (auto _ : state) {
    const uint32_t jam = jams[random.Below(static_cast<uint32_t>(jams.size()))];
    const uint32_t count = population.UserCount(jam);
    for (uint32_t k = 0; k < kMaxUsers; ++k) {
      user_ids[k] = k < count ? population.UserId(jam, k)
                              : population.SpareUserId(spare++);
    }
    const absl::string_view jam_id = population.JamId(jam);
    benchmark::DoNotOptimize(collection.Refresh(jam_id, user_ids, kNow));
    benchmark::DoNotOptimize(collection.Refresh(
        jam_id, absl::MakeConstSpan(user_ids.data(), count), kNow));
  }
  ReportTimePerOp(state, 2);
  CheckUnchanged(state, population);
}
BENCHMARK(BM_Refresh_FillAndRestore)->Apply(JamCounts);

// A user leaves a random jam and comes back: RemoveUser then AddUser. A jam of
// one user is deleted and created again (about 1 pick in 7).
void BM_RemoveUserThenAddUser(benchmark::State& state) {
  Population& population = GetPopulation(state.range(0));
  JamCollection& collection = population.collection();
  const uint32_t jam_count = population.jam_count();
  FastRandom random(3);
  for (auto _ : state) {
    const uint32_t jam = random.Below(jam_count);
    const absl::string_view jam_id = population.JamId(jam);
    const absl::string_view user_id = population.UserId(jam, 0);
    RemoveUserResult removed = collection.RemoveUser(jam_id, user_id, kNow);
    benchmark::DoNotOptimize(removed);
    AddUserResult added = collection.AddUser(jam_id, user_id, kNow);
    benchmark::DoNotOptimize(added);
  }
  ReportTimePerOp(state, 2);
  CheckUnchanged(state, population);
}
BENCHMARK(BM_RemoveUserThenAddUser)->Apply(JamCounts);

// Without a user id: the jam's occupancy decides.
void BM_HasCapacity(benchmark::State& state) {
  Population& population = GetPopulation(state.range(0));
  JamCollection& collection = population.collection();
  const uint32_t jam_count = population.jam_count();
  FastRandom random(4);
  for (auto _ : state) {
    HasCapacityResult result = collection.HasCapacity(
        population.JamId(random.Below(jam_count)), "", kNow);
    benchmark::DoNotOptimize(result);
  }
  ReportTimePerOp(state, 1);
  CheckUnchanged(state, population);
}
BENCHMARK(BM_HasCapacity)->Apply(JamCounts);

// A member of the jam asks (a front end re-checking a user it placed): the
// user is looked up too, and always has capacity, full jam or not.
void BM_HasCapacity_Member(benchmark::State& state) {
  Population& population = GetPopulation(state.range(0));
  JamCollection& collection = population.collection();
  const uint32_t jam_count = population.jam_count();
  FastRandom random(9);
  int64_t refused = 0;
  for (auto _ : state) {
    const uint32_t jam = random.Below(jam_count);
    HasCapacityResult result = collection.HasCapacity(
        population.JamId(jam), population.UserId(jam, 0), kNow);
    refused += !result.has_capacity;
    benchmark::DoNotOptimize(result);
  }
  ReportTimePerOp(state, 1);
  if (refused != 0) state.SkipWithError("a member was refused");
  CheckUnchanged(state, population);
}
BENCHMARK(BM_HasCapacity_Member)->Apply(JamCounts);

// A user in no jam asks: the user lookup misses, then occupancy decides.
void BM_HasCapacity_NewUser(benchmark::State& state) {
  Population& population = GetPopulation(state.range(0));
  JamCollection& collection = population.collection();
  const uint32_t jam_count = population.jam_count();
  FastRandom random(10);
  for (auto _ : state) {
    HasCapacityResult result =
        collection.HasCapacity(population.JamId(random.Below(jam_count)),
                               population.SpareUserId(random.Next()), kNow);
    benchmark::DoNotOptimize(result);
  }
  ReportTimePerOp(state, 1);
  CheckUnchanged(state, population);
}
BENCHMARK(BM_HasCapacity_NewUser)->Apply(JamCounts);

// Timed by hand: a batch of distinct jams, one call each, then the calls that
// undo them, untimed. kBatch calls per iteration.
constexpr size_t kBatch = 64;

// Walks a random permutation of some jams, so a batch never holds a jam twice.
class JamCycle {
 public:
  JamCycle(std::vector<uint32_t> jams, uint64_t seed) : jams_(std::move(jams)) {
    FastRandom random(seed);
    for (size_t i = jams_.size(); i > 1; --i) {  // Fisher-Yates.
      std::swap(jams_[i - 1], jams_[random.Below(static_cast<uint32_t>(i))]);
    }
  }
  // REQUIRES: at least kBatch jams.
  void NextBatch(std::array<uint32_t, kBatch>& batch) {
    for (uint32_t& jam : batch) {
      jam = jams_[next_];
      next_ = next_ + 1 == jams_.size() ? 0 : next_ + 1;
    }
  }

 private:
  std::vector<uint32_t> jams_;
  size_t next_ = 0;
};

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
      .count();
}

// A new user joins a jam with room (then leaves again, untimed).
void BM_AddUser_WithRoom(benchmark::State& state) {
  Population& population = GetPopulation(state.range(0));
  JamCollection& collection = population.collection();
  JamCycle cycle(population.jams_with_room(), 5);
  std::array<uint32_t, kBatch> batch;
  for (auto _ : state) {
    cycle.NextBatch(batch);
    const auto start = std::chrono::steady_clock::now();
    for (size_t i = 0; i < kBatch; ++i) {
      AddUserResult result = collection.AddUser(
          population.JamId(batch[i]), population.SpareUserId(i), kNow);
      benchmark::DoNotOptimize(result);
    }
    state.SetIterationTime(SecondsSince(start));
    for (size_t i = 0; i < kBatch; ++i) {
      collection.RemoveUser(population.JamId(batch[i]),
                            population.SpareUserId(i), kNow);
    }
  }
  ReportTimePerOp(state, kBatch);
  CheckUnchanged(state, population);
}
BENCHMARK(BM_AddUser_WithRoom)->Apply(JamCounts)->UseManualTime();

// A user leaves a random jam (then comes back, untimed). A jam of one user is
// deleted (about 1 pick in 7).
void BM_RemoveUser(benchmark::State& state) {
  Population& population = GetPopulation(state.range(0));
  JamCollection& collection = population.collection();
  std::vector<uint32_t> all_jams(population.jam_count());
  for (uint32_t jam = 0; jam < all_jams.size(); ++jam) all_jams[jam] = jam;
  JamCycle cycle(std::move(all_jams), 8);
  std::array<uint32_t, kBatch> batch;
  for (auto _ : state) {
    cycle.NextBatch(batch);
    const auto start = std::chrono::steady_clock::now();
    for (uint32_t jam : batch) {
      RemoveUserResult result = collection.RemoveUser(
          population.JamId(jam), population.UserId(jam, 0), kNow);
      benchmark::DoNotOptimize(result);
    }
    state.SetIterationTime(SecondsSince(start));
    for (uint32_t jam : batch) {
      collection.AddUser(population.JamId(jam), population.UserId(jam, 0),
                         kNow);
    }
  }
  ReportTimePerOp(state, kBatch);
  CheckUnchanged(state, population);
}
BENCHMARK(BM_RemoveUser)->Apply(JamCounts)->UseManualTime();

// A new user is turned away from a full jam; the answer carries the redirect
// (what CurrentJam answers now).
void BM_AddUser_Full(benchmark::State& state) {
  Population& population = GetPopulation(state.range(0));
  JamCollection& collection = population.collection();
  const std::vector<uint32_t>& jams = population.full_jams();
  FastRandom random(6);
  size_t spare = 0;
  for (auto _ : state) {
    AddUserResult result = collection.AddUser(
        population.JamId(
            jams[random.Below(static_cast<uint32_t>(jams.size()))]),
        population.SpareUserId(spare++), kNow);
    benchmark::DoNotOptimize(result);
  }
  ReportTimePerOp(state, 1);
  CheckUnchanged(state, population);
}
BENCHMARK(BM_AddUser_Full)->Apply(JamCounts);

// A new user arrives: CurrentJam with a user id reserves a seat (then the
// seat is released, untimed). Each seat of a batch goes to the fullest jam
// with room, which the previous seat may just have filled.
void BM_ReserveSeat(benchmark::State& state) {
  Population& population = GetPopulation(state.range(0));
  JamCollection& collection = population.collection();
  std::array<std::string, kBatch> jam_ids;
  size_t spare = 0;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    for (size_t i = 0; i < kBatch; ++i) {
      CurrentJamResult result =
          collection.ReserveSeat(population.SpareUserId(spare + i), kTtl, kNow);
      jam_ids[i] = std::move(result.jam_id);
    }
    state.SetIterationTime(SecondsSince(start));
    for (size_t i = 0; i < kBatch; ++i) {
      collection.RemoveUser(jam_ids[i], population.SpareUserId(spare + i),
                            kNow);
    }
    spare += kBatch;
  }
  ReportTimePerOp(state, kBatch);
  CheckUnchanged(state, population);
}
BENCHMARK(BM_ReserveSeat)->Apply(JamCounts)->UseManualTime();

// The whole arrival: a user reserves a seat, then joins the answered jam with
// AddUser, which turns the reservation into membership (then the user leaves
// again, untimed). Two calls per user, kBatch users per iteration.
void BM_ReserveSeatThenAddUser(benchmark::State& state) {
  Population& population = GetPopulation(state.range(0));
  JamCollection& collection = population.collection();
  std::array<std::string, kBatch> jam_ids;
  size_t spare = 0;
  int64_t refused = 0;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    for (size_t i = 0; i < kBatch; ++i) {
      const absl::string_view user_id = population.SpareUserId(spare + i);
      CurrentJamResult reserved = collection.ReserveSeat(user_id, kTtl, kNow);
      AddUserResult added = collection.AddUser(reserved.jam_id, user_id, kNow);
      refused += !added.added;
      benchmark::DoNotOptimize(added);
      jam_ids[i] = std::move(reserved.jam_id);
    }
    state.SetIterationTime(SecondsSince(start));
    for (size_t i = 0; i < kBatch; ++i) {
      collection.RemoveUser(jam_ids[i], population.SpareUserId(spare + i),
                            kNow);
    }
    spare += kBatch;
  }
  ReportTimePerOp(state, 2 * kBatch);
  if (refused != 0) state.SkipWithError("a reserved seat was refused");
  CheckUnchanged(state, population);
}
BENCHMARK(BM_ReserveSeatThenAddUser)->Apply(JamCounts)->UseManualTime();

// A user reserves a seat and gives it up (the front end lost the user):
// ReserveSeat then RemoveUser, both timed. The seat lands in the same jam
// every time, so this is the cache-warm cost.
void BM_ReserveSeatThenRelease(benchmark::State& state) {
  Population& population = GetPopulation(state.range(0));
  JamCollection& collection = population.collection();
  size_t spare = 0;
  int64_t kept = 0;
  for (auto _ : state) {
    const absl::string_view user_id = population.SpareUserId(spare++);
    CurrentJamResult reserved = collection.ReserveSeat(user_id, kTtl, kNow);
    benchmark::DoNotOptimize(reserved);
    RemoveUserResult released =
        collection.RemoveUser(reserved.jam_id, user_id, kNow);
    kept += !released.removed;
    benchmark::DoNotOptimize(released);
  }
  ReportTimePerOp(state, 2);
  if (kept != 0) state.SkipWithError("a reservation was not released");
  CheckUnchanged(state, population);
}
BENCHMARK(BM_ReserveSeatThenRelease)->Apply(JamCounts);

// Reservations nobody used: kBatch seats are reserved at kNow (untimed), then
// one ExpireReservations at their expiry drops them all, and the jams they
// had made full get room again.
void BM_ExpireReservations(benchmark::State& state) {
  Population& population = GetPopulation(state.range(0));
  JamCollection& collection = population.collection();
  size_t spare = 0;
  for (auto _ : state) {
    for (size_t i = 0; i < kBatch; ++i) {
      collection.ReserveSeat(population.SpareUserId(spare++), kTtl, kNow);
    }
    const auto start = std::chrono::steady_clock::now();
    collection.ExpireReservations(kNow + kTtl);
    state.SetIterationTime(SecondsSince(start));
  }
  state.counters["time_per_expiry"] =
      benchmark::Counter(kBatch, benchmark::Counter::kIsIterationInvariantRate |
                                     benchmark::Counter::kInvert);
  CheckUnchanged(state, population);
}
BENCHMARK(BM_ExpireReservations)->Apply(JamCounts)->UseManualTime();

void BM_Stats(benchmark::State& state) {
  Population& population = GetPopulation(state.range(0));
  JamCollection& collection = population.collection();
  for (auto _ : state) {
    CollectionSnapshot stats = collection.Snapshot(kNow);
    benchmark::DoNotOptimize(stats);
  }
  ReportTimePerOp(state, 1);
}
BENCHMARK(BM_Stats)->Apply(JamCounts);

// One page of kPageSize jams (ids and sorted user ids) after a random jam id.
// The page is built of some 500 small heap blocks, so its time depends on
// malloc's history: run alone (--benchmark_filter=ListJams) it is several
// times faster than after the churn of the 1e5 and 1e6 benchmarks, even at
// 1e3 jams, whose collection that churn never touches.
void BM_ListJams(benchmark::State& state) {
  Population& population = GetPopulation(state.range(0));
  JamCollection& collection = population.collection();
  const std::vector<absl::string_view>& starts = population.page_starts();
  FastRandom random(7);
  size_t listed = 0;
  for (auto _ : state) {
    JamPage page = collection.ListJams(
        starts[random.Below(static_cast<uint32_t>(starts.size()))], kPageSize,
        kNow);
    listed += page.jams.size();
    benchmark::DoNotOptimize(page);
  }
  ReportTimePerOp(state, 1);
  state.counters["time_per_jam"] = benchmark::Counter(
      static_cast<double>(listed),
      benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["jams_per_page"] =
      state.iterations() > 0 ? static_cast<double>(listed) /
                                   static_cast<double>(state.iterations())
                             : 0;
  CheckUnchanged(state, population);
}
BENCHMARK(BM_ListJams)->Apply(JamCounts);

// Not a timing: heap bytes the populated collection holds (read from malloc
// before and after building it), per user and per jam, and the build time.
void BM_Memory(benchmark::State& state) {
  Population& population = GetPopulation(state.range(0));
  for (auto _ : state) {
  }
  const CollectionSnapshot& stats = population.initial_stats();
  const auto bytes = static_cast<double>(population.collection_bytes());
  state.counters["bytes_per_user"] =
      bytes / static_cast<double>(stats.user_count);
  state.counters["bytes_per_jam"] =
      bytes / static_cast<double>(stats.jam_count);
  state.counters["MiB"] = bytes / (1024.0 * 1024.0);
  state.counters["users"] = static_cast<double>(stats.user_count);
  state.counters["build_ns_per_user"] =
      population.build_seconds() * 1e9 / static_cast<double>(stats.user_count);
#if !defined(__GLIBC__)
  state.SkipWithError("needs glibc mallinfo2");
#endif
}
BENCHMARK(BM_Memory)->Apply(JamCounts)->Iterations(1);

// Pools side by side. Each benchmark thread is a pool of its own, as each
// pool of the server is a JamPool whose state only its strand touches: a
// JamCollection on its own thread, sharing nothing with the others but the
// machine (cores, caches, memory bandwidth, malloc). Every pool runs the
// same work, the life cycle of jam-bench's batch workload in batches of
// kPoolBatch operations: AddUser for the users the previous batch's
// CurrentJam answered, RemoveUser of the oldest members beyond
// kPoolUsers, and CurrentJam with a user id (ReserveSeat) for new users,
// about a third each. It starts with `jams` jams filled as jam-bench's
// --prepopulate fills them (jam i holds 1 + i % 7 users) and is brought to
// the steady state (kPoolUsers members) before the timing starts.
//
// Threads(N) runs N pools at once; items_per_second is the operations of
// all N pools per second of wall time (UseRealTime): on a machine with at
// least N free cores it grows N-fold, on fewer it cannot.
constexpr int kPoolBatch = 100;       // Operations per batch (one iteration).
constexpr size_t kPoolUsers = 10000;  // Members each pool keeps.

class PoolWork {
 public:
  PoolWork(int pool, int64_t jams) : pool_(pool), collection_(kMaxUsers) {
    for (int64_t jam = 0; jam < jams; ++jam) {
      const std::string jam_id = absl::StrCat("pre-", jam);
      for (int64_t k = 0; k <= jam % kMaxUsers; ++k) {
        collection_.AddUser(jam_id, absl::StrCat(jam_id, "-u", k), kNow);
      }
    }
    // Steady state: the members fill up to kPoolUsers, a third of each
    // batch joining, before departures begin (bounded: 10x what it takes).
    for (size_t i = 0; i < 10 * kPoolUsers && members_.size() < kPoolUsers;
         ++i) {
      RunBatch();
    }
  }

  // One batch of kPoolBatch operations.
  void RunBatch() {
    int operations = 0;
    const size_t joins = std::min<size_t>(answered_.size(), kPoolBatch);
    for (size_t i = 0; i < joins; ++i) {
      auto& [jam_id, user_id] = answered_[i];
      const AddUserResult added = collection_.AddUser(jam_id, user_id, kNow);
      if (added.added) {
        members_.emplace_back(std::move(jam_id), std::move(user_id));
      } else {
        ++refused_;
      }
      ++operations;
    }
    answered_.erase(answered_.begin(), answered_.begin() + joins);
    while (operations < kPoolBatch && members_.size() > kPoolUsers) {
      const auto& [jam_id, user_id] = members_.front();
      benchmark::DoNotOptimize(collection_.RemoveUser(jam_id, user_id, kNow));
      members_.pop_front();
      ++operations;
    }
    for (; operations < kPoolBatch; ++operations) {
      std::string user_id = absl::StrCat("u", pool_, "-", users_made_++);
      CurrentJamResult seat = collection_.ReserveSeat(user_id, kTtl, kNow);
      answered_.emplace_back(std::move(seat.jam_id), std::move(user_id));
    }
  }

  // AddUser calls refused (none should be: each had a reserved seat).
  int64_t refused() const { return refused_; }

 private:
  const int pool_;
  JamCollection collection_;
  uint64_t users_made_ = 0;
  // (jam, user): members oldest first; seats answered by the last batch.
  std::deque<std::pair<std::string, std::string>> members_;
  std::vector<std::pair<std::string, std::string>> answered_;
  int64_t refused_ = 0;
};

void BM_PoolsInParallel(benchmark::State& state) {
  PoolWork pool(state.thread_index(), state.range(0));
  for (auto _ : state) pool.RunBatch();
  state.SetItemsProcessed(state.iterations() * kPoolBatch);
  if (pool.refused() != 0) state.SkipWithError("a reserved seat was refused");
}
BENCHMARK(BM_PoolsInParallel)
    ->ArgName("jams")
    ->Arg(1000)
    ->Arg(100000)
    ->UseRealTime()
    ->Threads(1)
    ->Threads(2)
    ->Threads(4);

}  // namespace
}  // namespace jambalancer
