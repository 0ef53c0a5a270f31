#ifndef JAM_BALANCER_SERVER_CORE_ROOM_INDEX_H_
#define JAM_BALANCER_SERVER_CORE_ROOM_INDEX_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/functional/function_ref.h"

namespace jambalancer {

// The best of a changing set of jams addressed by 32-bit handles: highest
// level first, then smallest id prefix, then smallest id.
//
// A 4-ary tournament tree: every handle has a leaf, every inner node holds
// the best of its four children, the root the best of all. Changing a jam
// recomputes the path from its leaf up and stops where a node keeps its
// value. Four siblings fill one cache line, so a change reads one line per
// level, and the lines are known from the handle alone: Prefetch loads them
// all at once. Leaves come in chunks of kChunkSize handles (one tree each,
// allocated when first used, never moved) under a small tree of chunk roots.
class RoomIndex {
 public:
  using Handle = uint32_t;
  static constexpr Handle kNoHandle = ~Handle{0};
  static constexpr size_t kChunkSize = 4096;  // 4^6.

  // Orders two distinct jams whose levels and prefixes are equal: true if
  // a's id is smaller. Must be a strict order consistent over time.
  using IdLess = absl::FunctionRef<bool(Handle a, Handle b)>;

  RoomIndex() = default;
  RoomIndex(const RoomIndex&) = delete;
  RoomIndex& operator=(const RoomIndex&) = delete;

  // Puts the jam in with `level` (level 0 takes it out) and its id's
  // prefix, which must not change while it is in.
  void Set(Handle handle, uint32_t level, uint64_t prefix, IdLess less);

  // The jam with the highest level, then smallest prefix, then smallest id;
  // kNoHandle if none is in.
  Handle Best() const {
    return top_.levels() == 0 || top_.root().level == 0 ? kNoHandle
                                                        : top_.root().handle;
  }

  // Starts loading the lines a Set of `handle` reads and writes.
  void Prefetch(Handle handle) const;

 private:
  struct Node {
    uint64_t prefix = 0;
    uint32_t level = 0;  // 0: no jam.
    Handle handle = kNoHandle;
    bool operator==(const Node& other) const {
      return prefix == other.prefix && level == other.level &&
             handle == other.handle;
    }
  };
  // Four siblings: one cache line.
  struct alignas(64) Group {
    Node nodes[4];
  };

  // A complete 4-ary tree stored level by level, root first; the children
  // of node i of a level are nodes 4i..4i+3 of the next, one Group.
  class Tree {
   public:
    Tree() = default;
    // A tree of empty nodes with 4^(levels - 1) leaves.
    explicit Tree(size_t levels);

    size_t levels() const { return levels_; }
    size_t leaves() const { return size_t{1} << (2 * (levels_ - 1)); }
    const Node& root() const { return groups_[0].nodes[0]; }
    Node& at(size_t level, size_t i) {
      return groups_[offsets_[level] + i / 4].nodes[i % 4];
    }
    const Group* group_of(size_t level, size_t i) const {
      return &groups_[offsets_[level] + i / 4];
    }
    // Sets leaf i and recomputes its ancestors, stopping at the first that
    // keeps its value. True if the root changed.
    bool Update(size_t i, const Node& value, IdLess less);
    // Recomputes every inner node.
    void Rebuild(IdLess less);

   private:
    static constexpr size_t kMaxLevels = 17;  // 4^16 leaves > 2^32 handles.
    size_t levels_ = 0;
    size_t offsets_[kMaxLevels] = {};  // First group of each level.
    std::unique_ptr<Group[]> groups_;
  };

  static const Node& Better(const Node& a, const Node& b, IdLess less);
  static const Node& Best(const Group& group, IdLess less);
  // Adds chunks up to `chunk`, growing the tree of chunk roots if needed.
  void AddChunks(size_t chunk, IdLess less);

  static constexpr size_t kChunkLevels = 7;  // 4096 leaves.
  std::vector<Tree> chunks_;
  Tree top_;  // Its leaf c is chunk c's root; no levels before any chunk.
};

}  // namespace jambalancer

#endif  // JAM_BALANCER_SERVER_CORE_ROOM_INDEX_H_
