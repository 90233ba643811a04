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
#include <cstring>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <vector>

#include "datagauge/parallel.hpp"
#include "datagauge/simd.hpp"
#include "datagauge/topk.hpp"

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
        // Boxes again with each bound padded to whole SIMD vectors (padding lo = hi = 0, and a
        // query padded with 0 there, adds nothing to the box distance).
        dpad_ = (d_ + kLanes - 1) / kLanes * kLanes;
        pboxes_.assign(nodes_.size() * static_cast<std::size_t>(2 * dpad_), 0.0f);
        for (std::size_t ni = 0; ni < nodes_.size(); ++ni) {
            const float* lo = boxes_.data() + nodes_[ni].box;
            float* dst = pboxes_.data() + ni * static_cast<std::size_t>(2 * dpad_);
            std::copy(lo, lo + d_, dst);
            std::copy(lo + d_, lo + 2 * d_, dst + dpad_);
        }
        std::vector<float>().swap(boxes_);
        // Batches: the largest subtrees of at most kBatchPoints points (or leaves), in order.
        leaf_of_.resize(static_cast<std::size_t>(n_));
        std::vector<std::int64_t> todo{0};
        while (!todo.empty()) {
            const std::int64_t ni = todo.back();
            todo.pop_back();
            const Node& node = nodes_[static_cast<std::size_t>(ni)];
            if (node.left < 0)
                for (std::int64_t p = node.begin; p < node.end; ++p) leaf_of_[static_cast<std::size_t>(p)] = ni;
            if (node.left < 0 || node.end - node.begin <= kBatchPoints) {
                batches_.push_back(ni);
                max_batch_ = std::max(max_batch_, node.end - node.begin);
                if (node.left < 0) continue;
            }
            if (node.left >= 0) {
                todo.push_back(node.right);
                todo.push_back(node.left);
            }
        }
        // Keep only the outermost batch roots (a batch's subtree was walked for leaf_of_ too).
        std::vector<std::int64_t> outer;
        std::int64_t covered = 0;
        for (std::int64_t ni : batches_) {
            const Node& node = nodes_[static_cast<std::size_t>(ni)];
            if (node.begin < covered) continue;
            outer.push_back(ni);
            covered = node.end;
        }
        batches_.swap(outer);
    }

    std::int64_t size() const { return n_; }
    std::int64_t dim() const { return d_; }
    std::int64_t index_offset() const { return offset_; }

    // k nearest tree points of each query row q in [begin, end). exclude[q] (a global index,
    // or -1) is never returned: pass the query's own index for a self-query. bounds[q] (a
    // squared distance, optional; +inf is no bound) keeps only points at squared distance <=
    // bounds[q], and the search skips every node whose box is farther: seeded with the k-th
    // distance found in other blocks, it returns exactly the points that can still enter the
    // merged list. Returns the number of points whose distance was computed (the cost).
    DATAGAUGE_SIMD_CLONES std::int64_t query(const float* queries, const std::int64_t* exclude, std::int64_t begin,
                                             std::int64_t end, int k, float* dist_out, std::int64_t* idx_out,
                                             const float* bounds = nullptr) const {
        Scratch s(k, dpad_);
        std::int64_t scanned = 0;
        for (std::int64_t q = begin; q < end; ++q) {
            s.top.reset(bounds ? bounds[q] : kMissingDistance);
            scanned += search(queries + q * d_, exclude ? exclude[q] : kMissingIndex, s);
            s.top.write(dist_out + q * k, idx_out + q * k);
        }
        return scanned;
    }

    // Batches of the self-query, in tree order (see self_query_batches).
    std::int64_t n_batches() const { return static_cast<std::int64_t>(batches_.size()); }

    // Self-query of the points of batches [batch_begin, batch_end), each point excluding
    // itself; output rows are local rows of the data the tree was built from.
    //
    // A batch is a subtree of at most kBatchPoints points, queried together: the tree is walked
    // once for the whole batch, pruned by the distance between the batch's box and a node's
    // box against the largest k-th distance in the batch, and each leaf reached is loaded once
    // and scanned for the queries of the batch whose own k-th distance its box can beat. This
    // shares the walk and the memory traffic of a leaf among the batch's queries. Each query
    // still scans every leaf whose box is closer than its k-th distance, by the same exact
    // arithmetic as a single search.
    DATAGAUGE_SIMD_CLONES void self_query_batches(std::int64_t batch_begin, std::int64_t batch_end, int k,
                                                  float* dist_out, std::int64_t* idx_out) const {
        Batch b(k, max_batch_, dpad_);
        for (std::int64_t bi = batch_begin; bi < batch_end; ++bi) {
            const Node& own = nodes_[static_cast<std::size_t>(batches_[static_cast<std::size_t>(bi)])];
            batch_search(own, b);
            for (std::int64_t t = 0; t < own.end - own.begin; ++t) {
                const std::int64_t row = perm_[static_cast<std::size_t>(own.begin + t)];
                b.tops[static_cast<std::size_t>(t)].write(dist_out + row * k, idx_out + row * k);
            }
        }
    }

    // k nearest points of this tree for each point of another tree `qt` (same dimension),
    // batch by batch of qt (batches [batch_begin, batch_end) of qt, in its tree order): the
    // same batched walk as the self-query, with qt's batch boxes. exclude[row] (a global index
    // of this tree, or -1) and bounds[row] (a squared distance; +inf none) are per row of the
    // data qt was built from, both optional, as in query(). Output rows are rows of qt's data.
    DATAGAUGE_SIMD_CLONES void query_tree(const KDTree& qt, const std::int64_t* exclude, const float* bounds,
                                          std::int64_t batch_begin, std::int64_t batch_end, int k, float* dist_out,
                                          std::int64_t* idx_out) const {
        if (qt.d_ != d_) throw std::invalid_argument("query tree has another dimension");
        Batch b(k, qt.max_batch_, dpad_);
        for (std::int64_t bi = batch_begin; bi < batch_end; ++bi) {
            const Node& qn = qt.nodes_[static_cast<std::size_t>(qt.batches_[static_cast<std::size_t>(bi)])];
            const std::int64_t m = qn.end - qn.begin;
            for (std::int64_t t = 0; t < m; ++t) {
                const std::int64_t row = qt.perm_[static_cast<std::size_t>(qn.begin + t)];
                const float* src = qt.pts_.data() + (qn.begin + t) * d_;
                std::copy(src, src + d_, b.q.begin() + t * dpad_);
                b.tops[static_cast<std::size_t>(t)].reset(bounds ? bounds[row] : kMissingDistance);
                b.exclude[static_cast<std::size_t>(t)] = exclude ? exclude[row] : kMissingIndex;
            }
            const float* lo = qt.pboxes_.data() + static_cast<std::size_t>(&qn - qt.nodes_.data()) * 2 * dpad_;
            walk(lo, lo + dpad_, m, b, nullptr);
            for (std::int64_t t = 0; t < m; ++t) {
                const std::int64_t row = qt.perm_[static_cast<std::size_t>(qn.begin + t)];
                b.tops[static_cast<std::size_t>(t)].write(dist_out + row * k, idx_out + row * k);
            }
        }
    }

    // Cost of a self-query: the points whose distance the search computes, summed over the
    // tree positions given. Divided by n it is the share of the data a query touches, which
    // tells whether the tree beats brute force on this data (low intrinsic dimension).
    DATAGAUGE_SIMD_CLONES std::int64_t probe(const std::int64_t* positions, std::int64_t m, int k) const {
        Scratch s(k, dpad_);
        std::int64_t total = 0;
        for (std::int64_t t = 0; t < m; ++t) {
            const std::int64_t p = positions[t];
            if (p < 0 || p >= n_) throw std::invalid_argument("probe position out of range");
            s.top.reset();
            total += search(pts_.data() + p * d_, offset_ + perm_[static_cast<std::size_t>(p)], s);
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
    std::vector<float> boxes_;          // node bounding boxes while building
    std::vector<float> pboxes_;         // node i: lo then hi, each padded to dpad_ floats
    std::int64_t dpad_ = 0;
    std::vector<std::int64_t> batches_;   // roots of the self-query batches, in tree order
    std::vector<std::int64_t> leaf_of_;   // tree position -> node index of its leaf
    std::int64_t max_batch_ = 0;          // most points in a batch
    static constexpr std::int64_t kBatchPoints = 1024;
    static constexpr std::int64_t kLanes = 8;
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
            // Identical points are split too (by index: the order below breaks ties by index):
            // their boxes have zero size, so once a query's list holds k of them at distance 0
            // every other such node is pruned, and many duplicates cost O(k log n) per query
            // instead of a scan of all of them.
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

    // Per-thread search state: the top-k list, the DFS stack and the query padded to dpad_.
    struct Pending {
        const Node* node;
        float dist;
    };
    struct Scratch {
        Scratch(int k, std::int64_t dpad) : top(k), q(static_cast<std::size_t>(dpad), 0.0f) {}
        TopK top;
        std::vector<Pending> stack;
        std::vector<float> q;
    };

    // Helpers of the search are forced inline: they are then compiled inside each SIMD clone
    // of the public entry points (a clone's callees are otherwise built for the baseline CPU).
    // Lower bound on the squared distance from q (padded) to the node's box, branch-free: the
    // distance between boxes, with q as a box of size zero.
    DATAGAUGE_INLINE float box_distance(const Node& node, const float* q) const { return box_box_distance(q, q, node); }

    static constexpr std::int64_t kScanBlock = 32;

    static std::int64_t padded(std::int64_t cnt) { return (cnt + kScanBlock - 1) / kScanBlock * kScanBlock; }

    // Distances from q to a leaf's points, kScanBlock at a time: four SIMD accumulators stay in
    // registers across the coordinates. Each lane computes sum_j (x_j - q_j)^2 in the order of
    // j with separate multiply and add, exactly as refine.hpp's squared_distance does, so every
    // exact engine reports bit-identical distances.
    DATAGAUGE_INLINE void scan_leaf(const Node& node, const float* q, std::int64_t exclude, TopK& top) const {
        const std::int64_t cnt = node.end - node.begin, stride = padded(cnt);
        const float* cols = cols_.data() + node.cols;
        for (std::int64_t p0 = 0; p0 < cnt; p0 += kScanBlock) {
            float acc[kScanBlock];
#if defined(__GNUC__)
            using simd::Float8;
            Float8 a0{}, a1{}, a2{}, a3{};
            const float* col = cols + p0;
            for (std::int64_t j = 0; j < d_; ++j, col += stride) {
                const Float8 qv = simd::splat(q[j]);
                const Float8 t0 = simd::load(col) - qv, t1 = simd::load(col + 8) - qv;
                const Float8 t2 = simd::load(col + 16) - qv, t3 = simd::load(col + 24) - qv;
                a0 += t0 * t0;
                a1 += t1 * t1;
                a2 += t2 * t2;
                a3 += t3 * t3;
            }
            const float bound = top.bound();
            if (!simd::any((a0 <= bound) | (a1 <= bound) | (a2 <= bound) | (a3 <= bound))) continue;
            std::memcpy(acc, &a0, sizeof a0);
            std::memcpy(acc + 8, &a1, sizeof a1);
            std::memcpy(acc + 16, &a2, sizeof a2);
            std::memcpy(acc + 24, &a3, sizeof a3);
#else
            for (std::int64_t p = 0; p < kScanBlock; ++p) acc[p] = 0.0f;
            for (std::int64_t j = 0; j < d_; ++j) {
                const float qj = q[j];
                const float* col = cols + j * stride + p0;
                for (std::int64_t p = 0; p < kScanBlock; ++p) {
                    const float t = col[p] - qj;
                    acc[p] += t * t;
                }
            }
#endif
            const std::int64_t m = std::min(kScanBlock, cnt - p0);  // real points; the rest is padding
            for (std::int64_t p = 0; p < m; ++p) {
                if (!(acc[p] <= top.bound())) continue;
                const std::int64_t gi = offset_ + perm_[static_cast<std::size_t>(node.begin + p0 + p)];
                if (gi != exclude) top.push(acc[p], gi);
            }
        }
    }

    // Depth-first, closer child first. Once the list is full, a node is skipped when its box
    // is not strictly closer than the k-th distance: distances are always exact, and among
    // neighbours tied exactly at the bound the ones returned depend only on the tree and the
    // query (deterministic). Many duplicate points then cost O(k) each, not O(duplicates).
    // A seeded list (TopK::reset(seed)) also skips boxes strictly farther than the seed.
    bool prune(float box_dist, const TopK& top) const { return top.prunes(box_dist); }

    // State of a leaf-batched self-query: one list and one padded query per batch point.
    struct Batch {
        Batch(int k, std::int64_t max_leaf, std::int64_t dpad)
            : tops(static_cast<std::size_t>(max_leaf), TopK(k)),
              q(static_cast<std::size_t>(max_leaf * dpad), 0.0f),
              exclude(static_cast<std::size_t>(max_leaf), kMissingIndex) {}
        std::vector<TopK> tops;
        std::vector<float> q;
        std::vector<std::int64_t> exclude;
        std::vector<Pending> stack;
    };

    // Lower bound on the squared distance between any point of box [alo, ahi] (padded to
    // dpad_) and any point of node b's box.
    DATAGAUGE_INLINE float box_box_distance(const float* alo, const float* ahi, const Node& b) const {
        const std::size_t w = static_cast<std::size_t>(2 * dpad_);
        const float* blo = pboxes_.data() + static_cast<std::size_t>(&b - nodes_.data()) * w;
        const float* bhi = blo + dpad_;
#if defined(__GNUC__)
        using simd::Float8;
        Float8 s{};
        for (std::int64_t j = 0; j < dpad_; j += kLanes) {
            const Float8 gap = simd::vmax(
                simd::vmax(simd::load(blo + j) - simd::load(ahi + j), simd::load(alo + j) - simd::load(bhi + j)),
                Float8{});
            s += gap * gap;
        }
        return simd::hsum(s);
#else
        float s = 0.0f;
        for (std::int64_t j = 0; j < d_; ++j) {
            const float gap = std::max(std::max(blo[j] - ahi[j], alo[j] - bhi[j]), 0.0f);
            s += gap * gap;
        }
        return s;
#endif
    }

    DATAGAUGE_INLINE void batch_search(const Node& own, Batch& b) const {
        const std::int64_t m = own.end - own.begin;
        for (std::int64_t t = 0; t < m; ++t) {
            const float* src = pts_.data() + (own.begin + t) * d_;
            std::copy(src, src + d_, b.q.begin() + t * dpad_);  // padding stays 0
            b.tops[static_cast<std::size_t>(t)].reset();
            b.exclude[static_cast<std::size_t>(t)] = offset_ + perm_[static_cast<std::size_t>(own.begin + t)];
        }
        // Each query's own leaf first: every list starts with close neighbours.
        for (std::int64_t t = 0; t < m; ++t) {
            const Node& leaf = nodes_[static_cast<std::size_t>(leaf_of_[static_cast<std::size_t>(own.begin + t)])];
            scan_leaf(leaf, b.q.data() + t * dpad_, b.exclude[static_cast<std::size_t>(t)],
                      b.tops[static_cast<std::size_t>(t)]);
        }
        const float* lo = pboxes_.data() + static_cast<std::size_t>(&own - nodes_.data()) * 2 * dpad_;
        walk(lo, lo + dpad_, m, b, &own);
    }

    // The shared walk of a batch of m queries (b.q, b.tops, b.exclude set) inside the box
    // [lo, hi]. A node is skipped when its box is too far for every query of the batch (farther
    // than every seed, or at least every full list's k-th distance); each leaf reached is
    // scanned for the queries whose own test (TopK::prunes) keeps it. `own` (or null): the
    // batch's subtree in this tree, whose leaves were already scanned for their own points.
    DATAGAUGE_INLINE void walk(const float* lo, const float* hi, std::int64_t m, Batch& b, const Node* own) const {
        float seeds = 0.0f;  // the largest seed: a box farther than every seed is skipped
        for (std::int64_t t = 0; t < m; ++t) seeds = std::max(seeds, b.tops[static_cast<std::size_t>(t)].seed());
        auto widest = [&]() {  // the largest k-th distance (+inf while a list is not full)
            float w = 0.0f;
            for (std::int64_t t = 0; t < m; ++t) {
                const TopK& top = b.tops[static_cast<std::size_t>(t)];
                w = std::max(w, top.full() ? top.bound() : kMissingDistance);
            }
            return w;
        };
        float bound = widest();
        auto skip = [&](float dist) { return dist >= bound || dist > seeds; };
        b.stack.clear();
        b.stack.push_back({&nodes_[0], 0.0f});
        while (!b.stack.empty()) {
            const Pending item = b.stack.back();
            b.stack.pop_back();
            if (skip(item.dist)) continue;
            const Node* node = item.node;
            if (node->left < 0) {
                const bool inside = own && node->begin >= own->begin && node->end <= own->end;
                for (std::int64_t t = 0; t < m; ++t) {
                    if (inside && own->begin + t >= node->begin && own->begin + t < node->end) continue;  // own leaf
                    TopK& top = b.tops[static_cast<std::size_t>(t)];
                    const float* q = b.q.data() + t * dpad_;
                    if (top.prunes(box_distance(*node, q))) continue;
                    scan_leaf(*node, q, b.exclude[static_cast<std::size_t>(t)], top);
                }
                bound = widest();
                continue;
            }
            const Node* l = &nodes_[static_cast<std::size_t>(node->left)];
            const Node* r = &nodes_[static_cast<std::size_t>(node->right)];
            const float dl = box_box_distance(lo, hi, *l), dr = box_box_distance(lo, hi, *r);
            const bool left_first = dl <= dr;
            const Node* near = left_first ? l : r;
            const Node* far = left_first ? r : l;
            const float dnear = left_first ? dl : dr, dfar = left_first ? dr : dl;
            if (!skip(dfar)) b.stack.push_back({far, dfar});
            if (!skip(dnear)) b.stack.push_back({near, dnear});
        }
    }

    // Returns the number of points whose distance was computed (the search's cost).
    DATAGAUGE_INLINE std::int64_t search(const float* query, std::int64_t exclude, Scratch& s) const {
        std::copy(query, query + d_, s.q.begin());  // padding stays 0
        const float* q = s.q.data();
        TopK& top = s.top;
        std::vector<Pending>& stack = s.stack;
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
