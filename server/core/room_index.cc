#include "server/core/room_index.h"

#include <cassert>
#include <utility>

namespace jambalancer {

RoomIndex::Tree::Tree(size_t levels) : levels_(levels) {
  assert(levels >= 1 && levels <= kMaxLevels);
  size_t groups = 0;
  for (size_t level = 0; level < levels; ++level) {
    offsets_[level] = groups;
    groups += level == 0 ? 1 : size_t{1} << (2 * level - 2);
  }
  groups_ = std::make_unique<Group[]>(groups);
}

bool RoomIndex::Tree::Update(size_t i, const Node& value, IdLess less) {
  Node& leaf = at(levels_ - 1, i);
  if (leaf == value) return false;
  leaf = value;
  for (size_t level = levels_ - 1; level > 0; --level) {
    const Node& best = Best(*group_of(level, i), less);
    i /= 4;
    Node& parent = at(level - 1, i);
    if (parent == best) return false;
    parent = best;
  }
  return true;
}

void RoomIndex::Tree::Rebuild(IdLess less) {
  for (size_t level = levels_ - 1; level > 0; --level) {
    const size_t parents = size_t{1} << (2 * (level - 1));
    for (size_t i = 0; i < parents; ++i) {
      at(level - 1, i) = Best(*group_of(level, 4 * i), less);
    }
  }
}

const RoomIndex::Node& RoomIndex::Better(const Node& a, const Node& b,
                                         IdLess less) {
  if (a.level != b.level) return a.level > b.level ? a : b;
  if (a.prefix != b.prefix) return a.prefix < b.prefix ? a : b;
  if (a.level == 0 || a.handle == b.handle) return a;
  return less(b.handle, a.handle) ? b : a;
}

const RoomIndex::Node& RoomIndex::Best(const Group& group, IdLess less) {
  return Better(Better(group.nodes[0], group.nodes[1], less),
                Better(group.nodes[2], group.nodes[3], less), less);
}

void RoomIndex::Set(Handle handle, uint32_t level, uint64_t prefix,
                    IdLess less) {
  const size_t chunk = handle / kChunkSize;
  if (chunk >= chunks_.size()) {
    if (level == 0) return;  // Never in.
    AddChunks(chunk, less);
  }
  const Node value = level == 0 ? Node() : Node{prefix, level, handle};
  Tree& tree = chunks_[chunk];
  if (tree.Update(handle % kChunkSize, value, less)) {
    top_.Update(chunk, tree.root(), less);
  }
}

void RoomIndex::Prefetch(Handle handle) const {
#if defined(__GNUC__)
  const size_t chunk = handle / kChunkSize;
  if (chunk >= chunks_.size()) return;
  const Tree& tree = chunks_[chunk];
  size_t i = handle % kChunkSize;
  for (size_t level = kChunkLevels - 1; level > 0; --level, i /= 4) {
    __builtin_prefetch(tree.group_of(level, i), /*rw=*/1);
  }
#else
  (void)handle;
#endif
}

void RoomIndex::AddChunks(size_t chunk, IdLess less) {
  while (chunks_.size() <= chunk) chunks_.emplace_back(kChunkLevels);
  if (top_.levels() != 0 && chunks_.size() <= top_.leaves()) return;
  // Rebuild the tree of chunk roots, wide enough for every chunk. It has a
  // node per chunk: cheap to rebuild, and that happens a few times only.
  size_t levels = 1;
  while ((size_t{1} << (2 * (levels - 1))) < chunks_.size()) ++levels;
  Tree top(levels);
  for (size_t c = 0; c < chunks_.size(); ++c) {
    top.at(levels - 1, c) = chunks_[c].root();
  }
  top.Rebuild(less);
  top_ = std::move(top);
}

}  // namespace jambalancer
