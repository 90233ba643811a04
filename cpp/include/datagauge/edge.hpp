// Edges of a Euclidean minimum spanning tree, in a strict total order (see mst.hpp).
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>

namespace datagauge {

// An undirected edge: (squared distance, smaller endpoint, larger endpoint); a < 0 is "none",
// which orders after every edge. For a fixed endpoint p, the order of the edges (p, r) is the
// order of the pairs (distance, r), the order of the k-NN lists (topk.hpp).
struct EdgeKey {
    float w = std::numeric_limits<float>::infinity();
    std::int64_t a = -1, b = -1;

    EdgeKey() = default;
    EdgeKey(float w_, std::int64_t p, std::int64_t q) : w(w_), a(std::min(p, q)), b(std::max(p, q)) {}
    bool valid() const { return a >= 0; }
};

inline bool edge_less(const EdgeKey& x, const EdgeKey& y) {
    if (!y.valid()) return x.valid();
    if (!x.valid()) return false;
    if (x.w < y.w) return true;
    if (y.w < x.w) return false;
    if (x.a != y.a) return x.a < y.a;
    return x.b < y.b;
}

}  // namespace datagauge
