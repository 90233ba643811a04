// Exact k-nearest-neighbour search with a kd-tree (Euclidean distance).
//
// The tree keeps its own copy of the points, reordered so that every node owns a contiguous
// range, and a bounding box per node. A query descends into the closer child first and skips
// any node whose box is farther than the current k-th best distance. Distances are computed
// from coordinate differences (no |x|^2 + |y|^2 - 2xy cancellation), so they are exact to
// float32 rounding. Results are squared distances, sorted by (distance, index).
//
// Indices returned are "global": the tree's points are numbered index_offset + row, so a
// tree over one block of a larger dataset returns indices into the whole dataset and its
// partial lists merge with those of other blocks (see topk.hpp).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <vector>

#include "datagauge/parallel.hpp"
#include "datagauge/topk.hpp"

// Hot loops get an AVX2 clone picked at run time (GCC function multi-versioning), so the
// library is built for the baseline CPU and still uses wide SIMD where the CPU has it.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define DATAGAUGE_SIMD_CLONES __attribute__((target_clones("avx2", "default")))
#define DATAGAUGE_INLINE __attribute__((always_inline)) inline
#else
#define DATAGAUGE_SIMD_CLONES
#define DATAGAUGE_INLINE inline
#endif

namespace datagauge {

class KDTree {
   public:
    KDTree(const float* data, std::int64_t n, std::int64_t d, int leaf_size, std::int64_t index_offset)
        : n_(n), d_(d), leaf_size_(leaf_size), offset_(index_offset) {
        if (n < 1) throw std::invalid_argument("KDTree needs at least one point");
        if (d < 1) throw std::invalid_argument("KDTree needs at least one feature");
        if (leaf_size < 1) throw std::invalid_argument("leaf_size must be >= 1");
        perm_.resize(static_cast<std::size_t>(n));
        std::iota(perm_.begin(), perm_.end(), std::int64_t{0});
        nodes_.reserve(static_cast<std::size_t>(2 * (n / leaf_size + 1)));
        build(data);
        // Copy points into tree order for cache-friendly leaves.
        pts_.resize(static_cast<std::size_t>(n * d));
        for (std::int64_t p = 0; p < n; ++p) {
            const float* src = data + perm_[static_cast<std::size_t>(p)] * d;
            std::copy(src, src + d, pts_.data() + p * d);
        }
        // Leaves also stored column by column (all x_0, then all x_1, ...) so that the
        // distances from a query to a whole leaf are computed in SIMD lanes. Each leaf's
        // columns are padded to a multiple of kScanBlock points with +inf, whose distance is
        // +inf and never enters a list, so the scan runs on whole blocks.
        std::size_t total = 0;
        for (Node& node : nodes_) {
            if (node.left >= 0) continue;
            node.cols = total;
            total += static_cast<std::size_t>(padded(node.end - node.begin) * d_);
        }
        cols_.assign(total, std::numeric_limits<float>::infinity());
        for (const Node& node : nodes_) {
            if (node.left >= 0) continue;
            const std::int64_t cnt = node.end - node.begin, stride = padded(cnt);
            float* dst = cols_.data() + node.cols;
            for (std::int64_t p = 0; p < cnt; ++p)
                for (std::int64_t j = 0; j < d_; ++j)
                    dst[j * stride + p] = pts_[static_cast<std::size_t>((node.begin + p) * d_ + j)];
        }
    }

    std::int64_t size() const { return n_; }
    std::int64_t dim() const { return d_; }
    std::int64_t index_offset() const { return offset_; }

    // k nearest tree points of each query row q in [begin, end). exclude[q] (a global index,
    // or -1) is never returned: pass the query's own index for a self-query.
    DATAGAUGE_SIMD_CLONES void query(const float* queries, const std::int64_t* exclude, std::int64_t begin, std::int64_t end,
               int k, float* dist_out, std::int64_t* idx_out) const {
        TopK top(k);
        std::vector<Pending> stack;
        for (std::int64_t q = begin; q < end; ++q) {
            top.reset();
            search(queries + q * d_, exclude ? exclude[q] : kMissingIndex, top, stack);
            top.write(dist_out + q * k, idx_out + q * k);
        }
    }

    // Self-query of the tree points at tree positions [pos_begin, pos_end), each excluding
    // itself; output rows are local rows of the data the tree was built from. Splitting work
    // by tree position keeps neighbouring queries (and their leaves) in cache together.
    DATAGAUGE_SIMD_CLONES void self_query_positions(std::int64_t pos_begin, std::int64_t pos_end, int k,
                                                    float* dist_out, std::int64_t* idx_out) const {
        TopK top(k);
        std::vector<Pending> stack;
        for (std::int64_t p = pos_begin; p < pos_end; ++p) {
            const std::int64_t row = perm_[static_cast<std::size_t>(p)];
            top.reset();
            search(pts_.data() + p * d_, offset_ + row, top, stack);
            top.write(dist_out + row * k, idx_out + row * k);
        }
    }

    // Cost of a self-query: the points whose distance the search computes, summed over the
    // tree positions given. Divided by n it is the share of the data a query touches, which
    // tells whether the tree beats brute force on this data (low intrinsic dimension).
    DATAGAUGE_SIMD_CLONES std::int64_t probe(const std::int64_t* positions, std::int64_t m, int k) const {
        TopK top(k);
        std::vector<Pending> stack;
        std::int64_t total = 0;
        for (std::int64_t t = 0; t < m; ++t) {
            const std::int64_t p = positions[t];
            if (p < 0 || p >= n_) throw std::invalid_argument("probe position out of range");
            top.reset();
            total += search(pts_.data() + p * d_, offset_ + perm_[static_cast<std::size_t>(p)], top, stack);
        }
        return total;
    }

   private:
    struct Node {
        std::int64_t begin, end;  // range of tree positions
        std::int64_t left = -1, right = -1;
        std::size_t box;          // offset of [lo(d), hi(d)] in boxes_
        std::int64_t split_dim = 0;
        float split_value = 0.0f;  // left points <= split_value <= right points
        std::size_t cols = 0;      // leaves: offset of the padded column block in cols_
    };

    std::int64_t n_, d_;
    int leaf_size_;
    std::int64_t offset_;
    std::vector<std::int64_t> perm_;    // tree position -> local row
    std::vector<float> pts_;            // points in tree order, row by row
    std::vector<float> cols_;           // the same, each leaf column by column, padded
    std::vector<float> boxes_;
    std::vector<Node> nodes_;

    void build(const float* data) {
        struct Task { std::int64_t node; };
        nodes_.push_back(Node{0, n_, -1, -1, 0, 0, 0.0f});
        std::vector<Task> todo{{0}};
        while (!todo.empty()) {
            const std::int64_t ni = todo.back().node;
            todo.pop_back();
            const std::int64_t b = nodes_[static_cast<std::size_t>(ni)].begin;
            const std::int64_t e = nodes_[static_cast<std::size_t>(ni)].end;
            // Bounding box of the node's points.
            const std::size_t box = boxes_.size();
            nodes_[static_cast<std::size_t>(ni)].box = box;
            boxes_.resize(box + static_cast<std::size_t>(2 * d_));
            float* lo = boxes_.data() + box;
            float* hi = lo + d_;
            const float* first = data + perm_[static_cast<std::size_t>(b)] * d_;
            std::copy(first, first + d_, lo);
            std::copy(first, first + d_, hi);
            for (std::int64_t p = b + 1; p < e; ++p) {
                const float* x = data + perm_[static_cast<std::size_t>(p)] * d_;
                for (std::int64_t j = 0; j < d_; ++j) {
                    lo[j] = std::min(lo[j], x[j]);
                    hi[j] = std::max(hi[j], x[j]);
                }
            }
            if (e - b <= leaf_size_) continue;
            std::int64_t split = 0;
            float spread = hi[0] - lo[0];
            for (std::int64_t j = 1; j < d_; ++j) {
                if (hi[j] - lo[j] > spread) {
                    spread = hi[j] - lo[j];
                    split = j;
                }
            }
            if (!(spread > 0.0f)) continue;  // all points identical: keep as one leaf
            const std::int64_t mid = b + (e - b) / 2;
            auto first_it = perm_.begin() + b, mid_it = perm_.begin() + mid, end_it = perm_.begin() + e;
            std::nth_element(first_it, mid_it, end_it, [&](std::int64_t u, std::int64_t v) {
                const float xu = data[u * d_ + split], xv = data[v * d_ + split];
                return xu < xv || (xu == xv && u < v);
            });
            const std::int64_t left = static_cast<std::int64_t>(nodes_.size());
            nodes_.push_back(Node{b, mid, -1, -1, 0, 0, 0.0f});
            nodes_.push_back(Node{mid, e, -1, -1, 0, 0, 0.0f});
            nodes_[static_cast<std::size_t>(ni)].split_dim = split;
            nodes_[static_cast<std::size_t>(ni)].split_value = data[*mid_it * d_ + split];
            nodes_[static_cast<std::size_t>(ni)].left = left;
            nodes_[static_cast<std::size_t>(ni)].right = left + 1;
            todo.push_back({left + 1});
            todo.push_back({left});
        }
    }

    // Helpers of the search are forced inline: they are then compiled inside each SIMD clone
    // of the public entry points (a clone's callees are otherwise built for the baseline CPU).
    DATAGAUGE_INLINE float box_distance(const Node& node, const float* q) const {
        const float* lo = boxes_.data() + node.box;
        const float* hi = lo + d_;
        float s = 0.0f;
        for (std::int64_t j = 0; j < d_; ++j) {
            // Branch-free (max instructions): the branches mispredict on every other node.
            const float gap = std::max(std::max(lo[j] - q[j], q[j] - hi[j]), 0.0f);
            s += gap * gap;
        }
        return s;
    }

    static constexpr std::int64_t kScanBlock = 32;

    static std::int64_t padded(std::int64_t cnt) { return (cnt + kScanBlock - 1) / kScanBlock * kScanBlock; }

    // Distances from q to a leaf's points, kScanBlock at a time: the block's accumulators stay
    // in SIMD registers across the coordinates (a fixed trip count the compiler unrolls).
    DATAGAUGE_INLINE void scan_leaf(const Node& node, const float* q, std::int64_t exclude, TopK& top) const {
        const std::int64_t cnt = node.end - node.begin, stride = padded(cnt);
        const float* cols = cols_.data() + node.cols;
        for (std::int64_t p0 = 0; p0 < cnt; p0 += kScanBlock) {
            float acc[kScanBlock] = {};
            for (std::int64_t j = 0; j < d_; ++j) {
                const float qj = q[j];
                const float* col = cols + j * stride + p0;
                for (std::int64_t p = 0; p < kScanBlock; ++p) {
                    const float t = col[p] - qj;
                    acc[p] += t * t;
                }
            }
            const float bound = top.bound();
            std::uint32_t hits = 0;
            for (std::int64_t p = 0; p < kScanBlock; ++p)
                hits |= static_cast<std::uint32_t>(acc[p] <= bound) << p;
            const std::int64_t m = cnt - p0;  // real points in this block; the rest is padding
            if (m < kScanBlock) hits &= (std::uint32_t{1} << m) - 1u;
            while (hits != 0) {
                const int p = __builtin_ctz(hits);
                hits &= hits - 1;
                const std::int64_t pos = node.begin + p0 + p;
                const std::int64_t gi = offset_ + perm_[static_cast<std::size_t>(pos)];
                if (gi != exclude) top.push(acc[p], gi);
            }
        }
    }

    // Depth-first, closer child first. Once the list is full, a node is skipped when its box
    // is not strictly closer than the k-th distance: distances are always exact, and among
    // neighbours tied exactly at the bound the ones returned depend only on the tree and the
    // query (deterministic). Many duplicate points then cost O(k) each, not O(duplicates).
    struct Pending {
        const Node* node;
        float dist;
    };

    bool prune(float box_dist, const TopK& top) const {
        return top.full() ? box_dist >= top.bound() : false;
    }

    // Returns the number of points whose distance was computed (the search's cost).
    DATAGAUGE_INLINE std::int64_t search(const float* q, std::int64_t exclude, TopK& top,
                                         std::vector<Pending>& stack) const {
        std::int64_t scanned = 0;
        stack.clear();
        stack.push_back({&nodes_[0], 0.0f});
        while (!stack.empty()) {
            const Pending item = stack.back();
            stack.pop_back();
            if (prune(item.dist, top)) continue;
            const Node* node = item.node;
            if (node->left < 0) {
                scan_leaf(*node, q, exclude, top);
                scanned += node->end - node->begin;
                continue;
            }
            const Node* l = &nodes_[static_cast<std::size_t>(node->left)];
            const Node* r = &nodes_[static_cast<std::size_t>(node->right)];
            // The child on the query's side of the split inherits the parent's lower bound (its
            // box lies inside the parent's); only the other child's box is measured.
            const float xs = q[node->split_dim];
            const bool left_first = xs <= node->split_value;
            const Node* near = left_first ? l : r;
            const Node* far = left_first ? r : l;
            const float dfar = box_distance(*far, q);
            if (!prune(dfar, top)) stack.push_back({far, dfar});
            stack.push_back({near, item.dist});
        }
        return scanned;
    }
};

}  // namespace datagauge
