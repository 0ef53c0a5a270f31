#include "server/util/memory_release.h"

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace jambalancer {
namespace {

// This process's resident memory, from /proc.
size_t ResidentBytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      return std::stoul(line.substr(6)) * 1024;
    }
  }
  return 0;
}

// A burst of small blocks (what parsing a large Sync leaves), freed: the
// allocator keeps the pages until they are released.
TEST(MemoryReleaseTest, GivesABurstsFreedMemoryBack) {
  constexpr size_t kBlocks = 400'000;
  constexpr size_t kBlockBytes = 256;  // ~100 MB, below mmap's threshold.
  const size_t before = ResidentBytes();
  {
    std::vector<std::unique_ptr<char[]>> blocks;
    blocks.reserve(kBlocks);
    for (size_t i = 0; i < kBlocks; ++i) {
      blocks.emplace_back(new char[kBlockBytes]);
      blocks.back()[0] = static_cast<char>(i);  // Touch the page.
      blocks.back()[kBlockBytes - 1] = static_cast<char>(i);
    }
    // Keep every 64th block: the freed memory is in holes, not only at the
    // top of the heap, as after a real burst.
    for (size_t i = 0; i < kBlocks; ++i) {
      if (i % 64 != 0) blocks[i].reset();
    }
    const size_t burst = ResidentBytes();
    ASSERT_GT(burst, before + 80'000'000);
    ReleaseFreeMemory();
    const size_t released = ResidentBytes();
    std::printf("RSS before %zu MB, after the burst %zu MB, released %zu MB\n",
                before >> 20, burst >> 20, released >> 20);
    EXPECT_LT(released, burst - 50'000'000);
  }
}

TEST(MemoryReleaseTest, PeriodicReleaseStopsWhenDestroyed) {
  PeriodicMemoryRelease release(absl::Milliseconds(10));
  absl::SleepFor(absl::Milliseconds(50));
}

}  // namespace
}  // namespace jambalancer
