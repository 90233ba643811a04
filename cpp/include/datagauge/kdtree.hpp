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
//
// A rotated tree is built on the points in another orthonormal frame (in practice their
// principal axes, computed by the caller): real embeddings vary along a few directions that
// are not coordinate axes, and boxes aligned with those directions prune far more. The
// rotated coordinates only screen. Each point carries a bound e_p on how far its rotated
// float32 row lies from the exact rotation of its row, so that for any query q and point p
//     sqrt(S) <= sqrt(D) + e_q + e_p   and   sqrt(D) <= sqrt(S) + e_q + e_p
// where S and D are the (real) squared distances in the rotated and the original frame. With
// the rounding of float32 sums of squares (relative g per sum), a box or a partial sum in the
// rotated frame gives a lower bound on the distance computed in the original frame; a box is
// skipped and a point dropped only when that lower bound cannot enter the list. Every point
// that can enter is measured in the original frame with the arithmetic of squared_distance,
// so the lists are the unrotated tree's, bit for bit, up to the choice among exact ties.
// Scans stop early on a block of points once every partial sum (principal axes first) is
// beyond the list's threshold.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <vector>

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define DATAGAUGE_KDTREE_AVX512 1
#endif

#include "datagauge/edge.hpp"
#include "datagauge/parallel.hpp"
#include "datagauge/refine.hpp"
#include "datagauge/simd.hpp"
#include "datagauge/topk.hpp"

namespace datagauge {

class KDTree {
   public:
    // `rotated` (optional, n x d): the points in another orthonormal frame, and `errors` (n):
    // each row's bound e_p (see the top of this file); `frame` names the frame, so that only
    // trees of one frame query each other. Without them the tree is built on `data` itself.
    // `n_threads` builds it (<= 0: all hardware threads); the tree is the same whatever it is.
    KDTree(const float* data, std::int64_t n, std::int64_t d, int leaf_size, std::int64_t index_offset,
           const float* rotated = nullptr, const float* errors = nullptr, std::int64_t frame = 0, int n_threads = 1)
        : n_(n), d_(d), leaf_size_(leaf_size), offset_(index_offset), rotated_(rotated != nullptr), frame_(frame) {
        if (n < 1) throw std::invalid_argument("KDTree needs at least one point");
        if (d < 1) throw std::invalid_argument("KDTree needs at least one feature");
        if (leaf_size < 1) throw std::invalid_argument("leaf_size must be >= 1");
        if (rotated_ && errors == nullptr) throw std::invalid_argument("a rotated tree needs the rows' errors");
        perm_.resize(static_cast<std::size_t>(n));
        std::iota(perm_.begin(), perm_.end(), std::int64_t{0});
        nodes_.reserve(static_cast<std::size_t>(2 * (n / leaf_size + 1)));
        const float* basis = rotated_ ? rotated : data;  // the frame of the boxes and scans
        build(basis, n_threads);
        // Copy points into tree order for cache-friendly leaves.
        pts_.resize(static_cast<std::size_t>(n * d));
        if (rotated_) {
            ypts_.resize(static_cast<std::size_t>(n * d));
            err_.resize(static_cast<std::size_t>(n));
        }
        parallel_for(static_cast<std::size_t>(n), n_threads, 4096, [&](std::size_t pb, std::size_t pe) {
            for (std::size_t p = pb; p < pe; ++p) {
                const std::int64_t row = perm_[p];
                std::copy(data + row * d, data + (row + 1) * d, pts_.data() + p * static_cast<std::size_t>(d));
                if (!rotated_) continue;
                std::copy(rotated + row * d, rotated + (row + 1) * d, ypts_.data() + p * static_cast<std::size_t>(d));
                err_[p] = errors[row];
            }
        });
        for (const float e : err_) emax_ = std::max(emax_, e);
        // Rounding of a float32 sum of squares of rounded differences, relative (with room;
        // fused multiply-adds round less).
        g_ = 4.0 * static_cast<double>(d + 8) * std::ldexp(1.0, -24);
        avx512_ = rotated_ && simd::level() == simd::Level::avx512;
        const std::vector<float>& frame_rows = rotated_ ? ypts_ : pts_;
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
        parallel_for(nodes_.size(), n_threads, 64, [&](std::size_t nb, std::size_t ne) {
            for (std::size_t ni = nb; ni < ne; ++ni) {
                const Node& node = nodes_[ni];
                if (node.left >= 0) continue;
                const std::int64_t cnt = node.end - node.begin, stride = padded(cnt);
                float* dst = cols_.data() + node.cols;
                for (std::int64_t p = 0; p < cnt; ++p)
                    for (std::int64_t j = 0; j < d_; ++j)
                        dst[j * stride + p] = frame_rows[static_cast<std::size_t>((node.begin + p) * d_ + j)];
            }
        });
        // Boxes again with each bound padded to whole SIMD vectors (padding lo = hi = 0, and a
        // query padded with 0 there, adds nothing to the box distance).
        dpad_ = (d_ + kLanes - 1) / kLanes * kLanes;
        // Box distances sum the features up to the last one any node splits on (rounded up to
        // whole vectors): dropping the others' gaps keeps a lower bound, and in a rotated tree
        // (principal axes first) they are the low-variance tail, where every node's box spans
        // nearly the whole data and the gaps are almost always 0.
        std::int64_t split_top = 0;
        for (const Node& node : nodes_)
            if (node.left >= 0) split_top = std::max(split_top, node.split_dim + 1);
        box_dims_ = std::min(dpad_, std::max<std::int64_t>(kLanes, (split_top + kLanes - 1) / kLanes * kLanes));
        for (const Node& node : nodes_)
            if (node.left < 0) max_leaf_ = std::max(max_leaf_, node.end - node.begin);
        if (rotated_) {
            // Each block's box over the first kLanes features, the leading principal axes
            // (padding features 0, as the query's padding is), so that a block box costs
            // little where it prunes nothing (data of high intrinsic dimension). Stored by
            // groups of kLanes blocks, feature-major (lo[j][block], then hi[j][block]), so one
            // vector pass gives a group's kLanes box distances; blocks past the leaf's end get
            // an empty box (lo +inf, hi -inf: never scanned).
            const std::size_t group = static_cast<std::size_t>(2 * kLanes * kLanes);
            for (Node& node : nodes_) {
                if (node.left >= 0) continue;
                node.blocks = bboxes_.size();
                const std::int64_t nblk = (node.end - node.begin + kScanBlock - 1) / kScanBlock;
                const std::int64_t ngroups = (nblk + kLanes - 1) / kLanes;
                bboxes_.resize(bboxes_.size() + static_cast<std::size_t>(ngroups) * group, 0.0f);
                float* base = bboxes_.data() + node.blocks;
                for (std::int64_t blk = 0; blk < ngroups * kLanes; ++blk) {
                    float* lo = base + static_cast<std::size_t>(blk / kLanes) * group + blk % kLanes;
                    float* hi = lo + kLanes * kLanes;
                    const std::int64_t p0 = node.begin + blk * kScanBlock;
                    const std::int64_t stop = std::min(node.end, p0 + kScanBlock);
                    for (std::int64_t j = 0; j < kLanes; ++j) {
                        float l = std::numeric_limits<float>::infinity(), h = -l;
                        if (j >= d_ && p0 < stop) l = h = 0.0f;  // padding feature
                        for (std::int64_t p = p0; p < stop && j < d_; ++p) {
                            const float v = ypts_[static_cast<std::size_t>(p * d_ + j)];
                            l = std::min(l, v);
                            h = std::max(h, v);
                        }
                        lo[j * kLanes] = l;
                        hi[j * kLanes] = h;
                    }
                }
            }
        }
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
    bool rotated() const { return rotated_; }
    std::int64_t frame() const { return frame_; }
    std::int64_t n_nodes() const { return static_cast<std::int64_t>(nodes_.size()); }
    // The local row of the point at tree position pos.
    std::int64_t row_at(std::int64_t pos) const { return perm_[static_cast<std::size_t>(pos)]; }

    // Whether the tree holds exactly the n rows of `data` (n x d), bit for bit.
    bool holds(const float* data, std::int64_t n, std::int64_t d) const {
        if (n != n_ || d != d_) return false;
        for (std::int64_t p = 0; p < n_; ++p)
            if (std::memcmp(pts_.data() + p * d_, data + perm_[static_cast<std::size_t>(p)] * d_,
                            static_cast<std::size_t>(d_) * sizeof(float)) != 0)
                return false;
        return true;
    }

    // Searches for the nearest point outside a component (Boruvka's rounds, mst.hpp), on a
    // tree over all the points (index offset 0). label[row] >= 0: the component of every row.
    // node_label[node] (n_nodes() entries): the label all the node's points share, or -1.
    void label_nodes(const std::int64_t* label, std::int64_t* node_label) const {
        for (std::size_t ni = nodes_.size(); ni-- > 0;) {  // children after their parents
            const Node& node = nodes_[ni];
            std::int64_t c;
            if (node.left >= 0) {
                c = node_label[node.left];
                if (node_label[node.right] != c) c = -1;
            } else {
                c = label[perm_[static_cast<std::size_t>(node.begin)]];
                for (std::int64_t p = node.begin + 1; p < node.end && c >= 0; ++p)
                    if (label[perm_[static_cast<std::size_t>(p)]] != c) c = -1;
            }
            node_label[ni] = c;
        }
    }

    struct OutsideScratch {
        std::vector<std::pair<std::int64_t, float>> stack;  // (node, lower bound)
        std::vector<float> q;                               // the query in the tree's frame, padded
    };

    // Improves `best` (EdgeKey order) with the cheapest edge from the point at tree position
    // `pos` (row p) to a point r with label[r] != c, no longer than `limit` (a squared
    // distance); node_label from label_nodes() for the same labels. Nodes inside c, and nodes
    // whose lower bound exceeds both `limit` and best's length, are skipped; a node at exactly
    // best's length is still searched (an equal length may win by its endpoints). Distances are
    // squared_distance's (the k-NN lists' arithmetic); a rotated tree only screens in its
    // frame, as the k-NN search does.
    DATAGAUGE_SIMD_CLONES void nearest_outside(std::int64_t pos, std::int64_t c, const std::int64_t* label,
                                               const std::int64_t* node_label, float limit, EdgeKey& best,
                                               OutsideScratch& s) const {
        const std::int64_t p = perm_[static_cast<std::size_t>(pos)];
        const float* qx = pts_.data() + pos * d_;
        const float* src = (rotated_ ? ypts_ : pts_).data() + pos * d_;
        s.q.assign(static_cast<std::size_t>(dpad_), 0.0f);
        std::copy(src, src + d_, s.q.begin());
        const float* q = s.q.data();
        const float eq = rotated_ ? err_[static_cast<std::size_t>(pos)] : 0.0f;
        float cap = best.valid() ? std::min(limit, best.w) : limit;
        // the screening bound: a rotated tree's sums beyond it lie beyond cap; a plain tree's
        // sums are the distances themselves
        auto screen_bound = [&]() { return rotated_ ? threshold(cap, eq) : cap; };
        float th = screen_bound();
        s.stack.clear();
        s.stack.emplace_back(0, lower(box_distance(nodes_[0], q), eq));
        while (!s.stack.empty()) {
            const auto [ni, bd] = s.stack.back();
            s.stack.pop_back();
            if (bd > cap || node_label[ni] == c) continue;
            const Node& node = nodes_[static_cast<std::size_t>(ni)];
            if (node.left >= 0) {
                const float dl = lower(box_distance(nodes_[static_cast<std::size_t>(node.left)], q), eq);
                const float dr = lower(box_distance(nodes_[static_cast<std::size_t>(node.right)], q), eq);
                const bool left_first = dl <= dr;
                const std::int64_t near = left_first ? node.left : node.right, far = left_first ? node.right : node.left;
                const float dnear = left_first ? dl : dr, dfar = left_first ? dr : dl;
                if (!(dfar > cap)) s.stack.emplace_back(far, dfar);
                if (!(dnear > cap)) s.stack.emplace_back(near, dnear);
                continue;
            }
            const std::int64_t cnt = node.end - node.begin, stride = padded(cnt);
            float box[kLanes], acc[kScanBlock];
            for (std::int64_t p0 = 0; p0 < cnt; p0 += kScanBlock) {
                if (!screen_leaf_block(node, p0, stride, q, th, rotated_ ? kAbandonStep : d_, box, acc)) continue;
                const std::int64_t m = std::min(kScanBlock, cnt - p0);
                for (std::int64_t t = 0; t < m; ++t) {
                    if (!(acc[t] <= th)) continue;
                    const std::int64_t at = node.begin + p0 + t;
                    const std::int64_t r = perm_[static_cast<std::size_t>(at)];
                    if (label[r] == c) continue;
                    // an unrotated tree's sums are squared_distance's already (block_sums)
                    const float w = rotated_ ? squared_distance(qx, pts_.data() + at * d_, d_) : acc[t];
                    const EdgeKey e(w, p, r);
                    if (!(w <= limit) || !edge_less(e, best)) continue;
                    best = e;
                    cap = std::min(limit, w);
                    th = screen_bound();
                }
            }
        }
    }

    // k nearest tree points of each query row q in [begin, end). exclude[q] (a global index,
    // or -1) is never returned: pass the query's own index for a self-query. bounds[q] (a
    // squared distance, optional; +inf is no bound) keeps only points at squared distance <=
    // bounds[q], and the search skips every node whose box is farther: seeded with the k-th
    // distance found in other blocks, it returns exactly the points that can still enter the
    // merged list. A rotated tree also needs the queries in its frame (`rotated_queries`) and
    // their errors. Returns the number of points whose distance was computed (the cost; for a
    // rotated tree, the points screened).
    DATAGAUGE_SIMD_CLONES std::int64_t query(const float* queries, const std::int64_t* exclude, std::int64_t begin,
                                             std::int64_t end, int k, float* dist_out, std::int64_t* idx_out,
                                             const float* bounds = nullptr, const float* rotated_queries = nullptr,
                                             const float* query_errors = nullptr) const {
        if (rotated_ && (rotated_queries == nullptr || query_errors == nullptr))
            throw std::invalid_argument("a rotated tree needs the queries in its frame and their errors");
        Scratch s(k, dpad_);
        std::int64_t scanned = 0;
        for (std::int64_t q = begin; q < end; ++q) {
            s.top.reset(bounds ? bounds[q] : kMissingDistance);
            const float* row = queries + q * d_;
            scanned += rotated_ ? search(row, rotated_queries + q * d_, query_errors[q], exclude ? exclude[q] : kMissingIndex, s)
                                : search(row, row, 0.0f, exclude ? exclude[q] : kMissingIndex, s);
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
        Batch b(k, max_batch_, dpad_, rotated_ ? max_leaf_ : 0);
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
        if (qt.rotated_ != rotated_ || qt.frame_ != frame_)
            throw std::invalid_argument("the query tree is built in another frame");
        Batch b(k, qt.max_batch_, dpad_);
        for (std::int64_t bi = batch_begin; bi < batch_end; ++bi) {
            const Node& qn = qt.nodes_[static_cast<std::size_t>(qt.batches_[static_cast<std::size_t>(bi)])];
            const std::int64_t m = qn.end - qn.begin;
            for (std::int64_t t = 0; t < m; ++t) {
                const std::int64_t row = qt.perm_[static_cast<std::size_t>(qn.begin + t)];
                qt.load_query(qn.begin + t, b, t);
                b.tops[static_cast<std::size_t>(t)].reset(bounds ? bounds[row] : kMissingDistance);
                b.exclude[static_cast<std::size_t>(t)] = exclude ? exclude[row] : kMissingIndex;
            }
            const float* lo = qt.pboxes_.data() + static_cast<std::size_t>(&qn - qt.nodes_.data()) * 2 * dpad_;
            walk(lo, lo + dpad_, m, b, nullptr, qt.emax_);
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
            const float* row = pts_.data() + p * d_;
            total += rotated_ ? search(row, ypts_.data() + p * d_, err_[static_cast<std::size_t>(p)],
                                       offset_ + perm_[static_cast<std::size_t>(p)], s)
                              : search(row, row, 0.0f, offset_ + perm_[static_cast<std::size_t>(p)], s);
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
        std::size_t blocks = 0;    // rotated leaves: offset of their blocks' boxes in bboxes_
    };

    std::int64_t n_, d_;
    int leaf_size_;
    std::int64_t offset_;
    bool rotated_ = false;
    std::int64_t frame_ = 0;
    float emax_ = 0.0f;                 // largest row error (rotated trees)
    double g_ = 0.0;                    // relative rounding of a float32 sum of squares
    bool avx512_ = false;               // rotated scans screen with the AVX-512 kernel
    std::vector<std::int64_t> perm_;    // tree position -> local row
    std::vector<float> pts_;            // points in tree order, row by row
    std::vector<float> ypts_;           // rotated trees: the rotated points in tree order
    std::vector<float> err_;            // rotated trees: each point's error, in tree order
    std::vector<float> cols_;           // the same, each leaf column by column, padded
    std::vector<float> boxes_;          // node bounding boxes while building
    std::vector<float> pboxes_;         // node i: lo then hi, each padded to dpad_ floats
    std::vector<float> bboxes_;         // rotated leaves: each kScanBlock block's lo then hi (box_dims_ each)
    std::int64_t dpad_ = 0;
    std::int64_t box_dims_ = 0;           // features the box distances sum (see the constructor)
    std::int64_t max_leaf_ = 0;           // most points in a leaf
    std::vector<std::int64_t> batches_;   // roots of the self-query batches, in tree order
    std::vector<std::int64_t> leaf_of_;   // tree position -> node index of its leaf
    std::int64_t max_batch_ = 0;          // most points in a batch
    static constexpr std::int64_t kBatchPoints = 1024;
    static constexpr std::int64_t kLanes = 8;
    std::vector<Node> nodes_;

    // The nodes' ranges depend only on n and the leaf size (each node splits at its middle
    // position), so they are laid out first (depth first, left before right) and the nodes of
    // each depth, whose ranges are disjoint, are then boxed and split side by side.
    void build(const float* data, int n_threads) {
        nodes_.push_back(Node{0, n_, -1, -1, 0, 0, 0.0f});
        std::vector<std::int64_t> depth{0}, todo{0};
        std::int64_t max_depth = 0;
        while (!todo.empty()) {
            const std::int64_t ni = todo.back();
            todo.pop_back();
            const std::int64_t b = nodes_[static_cast<std::size_t>(ni)].begin;
            const std::int64_t e = nodes_[static_cast<std::size_t>(ni)].end;
            if (e - b <= leaf_size_) continue;
            const std::int64_t mid = b + (e - b) / 2;
            const std::int64_t left = static_cast<std::int64_t>(nodes_.size());
            nodes_.push_back(Node{b, mid, -1, -1, 0, 0, 0.0f});
            nodes_.push_back(Node{mid, e, -1, -1, 0, 0, 0.0f});
            nodes_[static_cast<std::size_t>(ni)].left = left;
            nodes_[static_cast<std::size_t>(ni)].right = left + 1;
            const std::int64_t below = depth[static_cast<std::size_t>(ni)] + 1;
            depth.push_back(below);
            depth.push_back(below);
            max_depth = std::max(max_depth, below);
            todo.push_back(left + 1);
            todo.push_back(left);
        }
        boxes_.assign(nodes_.size() * static_cast<std::size_t>(2 * d_), 0.0f);
        std::vector<std::vector<std::int64_t>> levels(static_cast<std::size_t>(max_depth + 1));
        for (std::size_t ni = 0; ni < nodes_.size(); ++ni)
            levels[static_cast<std::size_t>(depth[ni])].push_back(static_cast<std::int64_t>(ni));
        for (const std::vector<std::int64_t>& level : levels)
            parallel_for(level.size(), n_threads, 1, [&](std::size_t lb, std::size_t le) {
                for (std::size_t t = lb; t < le; ++t) split_node(data, level[t]);
            });
    }

    // Boxes node ni (its parent already split) and splits it, or orders a leaf's blocks.
    void split_node(const float* data, std::int64_t ni) {
        Node& node = nodes_[static_cast<std::size_t>(ni)];
        const std::int64_t b = node.begin, e = node.end;
        node.box = static_cast<std::size_t>(ni) * static_cast<std::size_t>(2 * d_);
        float* lo = boxes_.data() + node.box;
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
        if (node.left < 0) {
            if (rotated_) order_blocks(data, b, e);
            return;
        }
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
        node.split_dim = split;
        node.split_value = data[*mid_it * d_ + split];
    }

    // Orders a rotated leaf's points [b, e) so that each block of kScanBlock points (from b)
    // is compact in the leading kLanes features (principal axes first): split at a block
    // boundary near the middle along the widest of them, again in each half. A scan then skips a block whose box is too
    // far (the order inside a leaf changes no answer: ties are broken by index).
    void order_blocks(const float* data, std::int64_t b, std::int64_t e) {
        if (e - b <= kScanBlock) return;
        std::int64_t split = 0;
        float spread = -1.0f;
        for (std::int64_t j = 0; j < std::min(d_, kLanes); ++j) {  // the block boxes' features
            float lo = std::numeric_limits<float>::infinity(), hi = -lo;
            for (std::int64_t p = b; p < e; ++p) {
                const float v = data[perm_[static_cast<std::size_t>(p)] * d_ + j];
                lo = std::min(lo, v);
                hi = std::max(hi, v);
            }
            if (hi - lo > spread) {
                spread = hi - lo;
                split = j;
            }
        }
        const std::int64_t half = ((e - b) / 2 + kScanBlock - 1) / kScanBlock * kScanBlock;
        const std::int64_t mid = b + half;
        std::nth_element(perm_.begin() + b, perm_.begin() + mid, perm_.begin() + e, [&](std::int64_t u, std::int64_t v) {
            const float xu = data[u * d_ + split], xv = data[v * d_ + split];
            return xu < xv || (xu == xv && u < v);
        });
        order_blocks(data, b, mid);
        order_blocks(data, mid, e);
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
        std::vector<float> q;  // the query in the tree's frame, padded
    };

    // Rotated trees: a lower bound on the squared distance computed in the original frame
    // (squared_distance) between a query of error e and any point p, from a squared distance
    // `s` computed in the rotated frame to p (or to a box around the rotated points):
    // sqrt(D) >= sqrt(S) - e - e_p with S >= s / (1 + g) and D_computed >= D (1 - g).
    DATAGAUGE_INLINE float lower(float s, float e) const {
        if (!rotated_) return s;
        const double r = std::sqrt(static_cast<double>(s) / (1.0 + g_)) - static_cast<double>(e) - emax_;
        if (!(r > 0.0)) return 0.0f;
        return std::nextafter(static_cast<float>((1.0 - g_) * r * r), 0.0f);
    }
    // The inverse: a point whose rotated squared distance exceeds threshold(bound, e) lies
    // strictly beyond `bound` in the original frame, so it cannot enter a list of that bound.
    DATAGAUGE_INLINE float threshold(float bound, float e) const {
        if (!(bound < kMissingDistance)) return kMissingDistance;
        const double r = std::sqrt(static_cast<double>(bound) / (1.0 - g_)) + static_cast<double>(e) + emax_;
        return std::nextafter(static_cast<float>((1.0 + g_) * r * r), kMissingDistance);
    }

    // Helpers of the search are forced inline: they are then compiled inside each SIMD clone
    // of the public entry points (a clone's callees are otherwise built for the baseline CPU).
    // Lower bound on the squared distance from q (padded) to the node's box, branch-free: the
    // distance between boxes, with q as a box of size zero.
    DATAGAUGE_INLINE float box_distance(const Node& node, const float* q) const { return box_box_distance(q, q, node); }
    // The box distances from q (padded) to a group of kLanes blocks (see the constructor),
    // written to out.
    DATAGAUGE_INLINE static void block_box_distances(const float* group, const float* q, float* out) {
#if defined(__GNUC__)
        simd::Float8 s{};
        for (std::int64_t j = 0; j < kLanes; ++j) {
            const simd::Float8 qv = simd::splat(q[j]);
            const simd::Float8 gap = simd::vmax(
                simd::vmax(simd::load(group + j * kLanes) - qv, qv - simd::load(group + (kLanes + j) * kLanes)),
                simd::Float8{});
            s += gap * gap;
        }
        std::memcpy(out, &s, sizeof s);
#else
        for (std::int64_t b = 0; b < kLanes; ++b) {
            float s = 0.0f;
            for (std::int64_t j = 0; j < kLanes; ++j) {
                const float lo = group[j * kLanes + b], hi = group[(kLanes + j) * kLanes + b];
                const float gap = std::max(std::max(lo - q[j], q[j] - hi), 0.0f);
                s += gap * gap;
            }
            out[b] = s;
        }
#endif
    }

    // Columns of a 32-point block scanned between two tests of a rotated scan's partial sums.
    static constexpr std::int64_t kAbandonStep = 8;
    // Leading features whose partial sums rank a query's own leaf for its first neighbours.
    static constexpr std::int64_t kSeedDims = 8;

    static constexpr std::int64_t kScanBlock = 32;

    static std::int64_t padded(std::int64_t cnt) { return (cnt + kScanBlock - 1) / kScanBlock * kScanBlock; }

    // Sums of squared differences between q and the kScanBlock points of a leaf block (columns
    // `stride` apart from `col`), each lane in feature order with separate multiply and add.
    // Every `step` features, and at the end, the block is given up (false) when no sum is <= th;
    // otherwise the sums are written to acc. Over the first `dims` features (all by default;
    // fewer give a lower bound on the full sums).
    DATAGAUGE_INLINE bool block_sums(const float* col, std::int64_t stride, const float* q, float th,
                                     std::int64_t step, float* acc, std::int64_t dims = -1) const {
        const std::int64_t end = dims < 0 ? d_ : dims;
#if defined(__GNUC__)
        using simd::Float8;
        Float8 a0{}, a1{}, a2{}, a3{};
        for (std::int64_t j = 0; j < end;) {
            const std::int64_t stop = std::min(end, j + step);
            for (; j < stop; ++j, col += stride) {
                const Float8 qv = simd::splat(q[j]);
                const Float8 t0 = simd::load(col) - qv, t1 = simd::load(col + 8) - qv;
                const Float8 t2 = simd::load(col + 16) - qv, t3 = simd::load(col + 24) - qv;
                a0 += t0 * t0;
                a1 += t1 * t1;
                a2 += t2 * t2;
                a3 += t3 * t3;
            }
            if (!simd::any((a0 <= th) | (a1 <= th) | (a2 <= th) | (a3 <= th))) return false;
        }
        std::memcpy(acc, &a0, sizeof a0);
        std::memcpy(acc + 8, &a1, sizeof a1);
        std::memcpy(acc + 16, &a2, sizeof a2);
        std::memcpy(acc + 24, &a3, sizeof a3);
        return true;
#else
        (void)step;
        for (std::int64_t p = 0; p < kScanBlock; ++p) acc[p] = 0.0f;
        for (std::int64_t j = 0; j < end; ++j) {
            const float qj = q[j];
            const float* c = col + j * stride;
            for (std::int64_t p = 0; p < kScanBlock; ++p) {
                const float t = c[p] - qj;
                acc[p] += t * t;
            }
        }
        for (std::int64_t p = 0; p < kScanBlock; ++p)
            if (acc[p] <= th) return true;
        return false;
#endif
    }


    // Distances from q to a leaf's points, kScanBlock at a time: four SIMD accumulators stay in
    // registers across the coordinates. Each lane computes sum_j (x_j - q_j)^2 in the order of
    // j with separate multiply and add, exactly as refine.hpp's squared_distance does, so every
    // exact engine reports bit-identical distances.
    DATAGAUGE_INLINE void scan_leaf(const Node& node, const float* q, const float* qx, float eq, std::int64_t exclude,
                                    TopK& top) const {
        if (rotated_) {
            float th = threshold(top.bound(), eq);
            return scan_leaf_rotated(node, q, qx, eq, exclude, top, th);
        }
        const std::int64_t cnt = node.end - node.begin, stride = padded(cnt);
        const float* cols = cols_.data() + node.cols;
        for (std::int64_t p0 = 0; p0 < cnt; p0 += kScanBlock) {
            float acc[kScanBlock];
            if (!block_sums(cols + p0, stride, q, top.bound(), d_, acc)) continue;
            const std::int64_t m = std::min(kScanBlock, cnt - p0);  // real points; the rest is padding
            for (std::int64_t p = 0; p < m; ++p) {
                if (!(acc[p] <= top.bound())) continue;
                const std::int64_t gi = offset_ + perm_[static_cast<std::size_t>(node.begin + p0 + p)];
                if (gi != exclude) top.push(acc[p], gi);
            }
        }
    }

    // Screens the kScanBlock points of `node` from position p0 (its columns `stride` apart)
    // against th: a rotated leaf's block box first (`box`: the box distances of the block's
    // group, refreshed at each group's first block, so blocks must come in order), then the
    // sums, abandoned every `step` features (the AVX-512 kernel's own step where it runs).
    // False when no point of the block is within th; else the sums are in acc.
    DATAGAUGE_INLINE bool screen_leaf_block(const Node& node, std::int64_t p0, std::int64_t stride, const float* q,
                                            float th, std::int64_t step, float* box, float* acc) const {
        const float* cols = cols_.data() + node.cols + p0;
        if (rotated_) {
            const std::int64_t blk = p0 / kScanBlock;
            if (blk % kLanes == 0)
                block_box_distances(bboxes_.data() + node.blocks + blk / kLanes * 2 * kLanes * kLanes, q, box);
            if (box[blk % kLanes] > th) return false;
#if defined(DATAGAUGE_KDTREE_AVX512)
            if (avx512_) return screen_block_avx512(cols, stride, d_, q, th, acc);
#endif
        }
        return block_sums(cols, stride, q, th, step, acc);
    }

    // A rotated tree's scan: partial sums in the rotated frame (principal axes first), a block
    // of points dropped as soon as all of them exceed the threshold; the points that may enter
    // are measured in the original frame (squared_distance: the exact engines' arithmetic),
    // eight at a time across blocks (eight independent sums: a single sum is one chain of d
    // dependent additions, so a group of one or two costs as long as a group of eight).
    // `th` is threshold(top.bound(), eq) on entry and is kept so on return.
    // `skip` (optional): per position of the leaf, nonzero for points not to measure (already
    // in the list).
    DATAGAUGE_INLINE void scan_leaf_rotated(const Node& node, const float* q, const float* qx, float eq,
                                            std::int64_t exclude, TopK& top, float& th,
                                            const unsigned char* skip = nullptr) const {
        const std::int64_t cnt = node.end - node.begin, stride = padded(cnt);
        float bound = top.bound();
        std::int64_t cand[kScanBlock + 16];
        const std::int64_t flush = avx512_ ? 16 : 8;  // candidates measured together
        std::int64_t nc = 0;
        float box[kLanes];
        for (std::int64_t p0 = 0; p0 < cnt; p0 += kScanBlock) {
            float acc[kScanBlock];
            if (!screen_leaf_block(node, p0, stride, q, th, kAbandonStep, box, acc)) continue;
            const std::int64_t m = std::min(kScanBlock, cnt - p0);
            for (std::int64_t p = 0; p < m; ++p) {
                if (!(acc[p] <= th) || (skip && skip[p0 + p])) continue;
                const std::int64_t pos = node.begin + p0 + p;
                if (offset_ + perm_[static_cast<std::size_t>(pos)] != exclude) cand[nc++] = pos;
            }
            if (nc >= flush) {
                const std::int64_t whole = nc / flush * flush;
                measure_positions(cand, whole, qx, eq, top, bound, th);
                std::copy(cand + whole, cand + nc, cand);
                nc -= whole;
            }
        }
        measure_positions(cand, nc, qx, eq, top, bound, th);
    }

    // Measures the points at tree positions pos[0..count) in the original frame, eight at a
    // time (squared_distance8, bit-identical to squared_distance), and pushes those within the
    // list's bound; `bound` and `th` follow the list.
    // With AVX-512, more than eight at a time go sixteen at a time (squared_distance16_avx512,
    // bit-identical too: whole rows transposed in registers instead of gathered).
    DATAGAUGE_INLINE void measure_positions(const std::int64_t* pos, std::int64_t count, const float* qx, float eq,
                                            TopK& top, float& bound, float& th) const {
        for (std::int64_t c0 = 0; c0 < count;) {
            const float* rows[16];
            float dx[16];
            std::int64_t g = std::min<std::int64_t>(8, count - c0);
#if DATAGAUGE_REFINE_AVX512
            if (avx512_ && count - c0 > 8) {
                g = std::min<std::int64_t>(16, count - c0);
                for (std::int64_t r = 0; r < 16; ++r) rows[r] = pts_.data() + pos[c0 + std::min(r, g - 1)] * d_;
                squared_distance16_avx512(qx, rows, d_, dx);
            } else
#endif
            {
                for (std::int64_t r = 0; r < 8; ++r) rows[r] = pts_.data() + pos[c0 + std::min(r, g - 1)] * d_;
                squared_distance8(qx, rows, d_, dx);
            }
            for (std::int64_t r = 0; r < g; ++r) {
                if (!(dx[r] <= bound)) continue;
                top.push(dx[r], offset_ + perm_[static_cast<std::size_t>(pos[c0 + r])]);
                if (top.bound() != bound) {
                    bound = top.bound();
                    th = threshold(bound, eq);
                }
            }
            c0 += g;
        }
    }

#if defined(DATAGAUGE_KDTREE_AVX512)
    // One block of kScanBlock points of a rotated leaf (columns `col`, `stride` apart): sums of
    // squared differences to q in 16-float vectors with fused multiply-adds, four independent
    // chains (even and odd features), tested against th every kAbandonStep features. Returns
    // false when every point of the block exceeds th (the block is dropped), else writes the
    // sums to acc. Only screens: its rounding is within the bound g of a rotated tree.
    __attribute__((target("avx512f,fma"), noinline)) static bool screen_block_avx512(
        const float* col, std::int64_t stride, std::int64_t d, const float* q, float th, float* acc) {
        __m512 e0 = _mm512_setzero_ps(), e1 = _mm512_setzero_ps();
        __m512 o0 = _mm512_setzero_ps(), o1 = _mm512_setzero_ps();
        const __m512 thv = _mm512_set1_ps(th);
        std::int64_t j = 0;
        while (j < d) {
            const std::int64_t stop = std::min(d, j + kAbandonStep);
            for (; j + 1 < stop; j += 2, col += 2 * stride) {
                const __m512 qa = _mm512_set1_ps(q[j]), qb = _mm512_set1_ps(q[j + 1]);
                const __m512 a0 = _mm512_sub_ps(_mm512_loadu_ps(col), qa);
                const __m512 a1 = _mm512_sub_ps(_mm512_loadu_ps(col + 16), qa);
                const __m512 b0 = _mm512_sub_ps(_mm512_loadu_ps(col + stride), qb);
                const __m512 b1 = _mm512_sub_ps(_mm512_loadu_ps(col + stride + 16), qb);
                e0 = _mm512_fmadd_ps(a0, a0, e0);
                e1 = _mm512_fmadd_ps(a1, a1, e1);
                o0 = _mm512_fmadd_ps(b0, b0, o0);
                o1 = _mm512_fmadd_ps(b1, b1, o1);
            }
            if (j < stop) {  // an odd feature left in this step
                const __m512 qa = _mm512_set1_ps(q[j]);
                const __m512 a0 = _mm512_sub_ps(_mm512_loadu_ps(col), qa);
                const __m512 a1 = _mm512_sub_ps(_mm512_loadu_ps(col + 16), qa);
                e0 = _mm512_fmadd_ps(a0, a0, e0);
                e1 = _mm512_fmadd_ps(a1, a1, e1);
                ++j;
                col += stride;
            }
            const __m512 s0 = _mm512_add_ps(e0, o0), s1 = _mm512_add_ps(e1, o1);
            const __mmask16 keep =
                _mm512_cmp_ps_mask(s0, thv, _CMP_LE_OQ) | _mm512_cmp_ps_mask(s1, thv, _CMP_LE_OQ);
            if (keep == 0) return false;
            if (j >= d) {
                _mm512_storeu_ps(acc, s0);
                _mm512_storeu_ps(acc + 16, s1);
            }
        }
        return true;
    }
#endif

    // Depth-first, closer child first. Once the list is full, a node is skipped when its box
    // is not strictly closer than the k-th distance: distances are always exact, and among
    // neighbours tied exactly at the bound the ones returned depend only on the tree and the
    // query (deterministic). Many duplicate points then cost O(k) each, not O(duplicates).
    // A seeded list (TopK::reset(seed)) also skips boxes strictly farther than the seed.
    bool prune(float box_dist, const TopK& top) const { return top.prunes(box_dist); }

    // State of a leaf-batched self-query: one list and one padded query per batch point.
    struct Batch {
        Batch(int k, std::int64_t max_leaf, std::int64_t dpad, std::int64_t leaf_points = 0)
            : tops(static_cast<std::size_t>(max_leaf), TopK(k)),
              q(static_cast<std::size_t>(max_leaf * dpad), 0.0f),
              qx(static_cast<std::size_t>(max_leaf), nullptr),
              eq(static_cast<std::size_t>(max_leaf), 0.0f),
              exclude(static_cast<std::size_t>(max_leaf), kMissingIndex),
              th(static_cast<std::size_t>(max_leaf), kMissingDistance),
              screened(static_cast<std::size_t>(padded(leaf_points))),
              values(leaf_points > 0 ? static_cast<std::size_t>(k) : 0),
              order(static_cast<std::size_t>(leaf_points)),
              seeded(static_cast<std::size_t>(leaf_points), 0) {}
        std::vector<TopK> tops;
        std::vector<float> q;          // queries in the frame of the tree, padded
        std::vector<const float*> qx;  // queries in the original frame
        std::vector<float> eq;         // their errors (rotated trees)
        std::vector<std::int64_t> exclude;
        std::vector<float> th;               // rotated trees: each list's bound in the rotated frame
        std::vector<float> screened;         // the own leaf's partial screening distances
        std::vector<float> values;           // the k smallest of them so far, ascending
        std::vector<std::int64_t> order;     // the tree positions of the seeds
        std::vector<unsigned char> seeded;   // per position of the own leaf: a seed (measured)
        std::vector<Pending> stack;
        std::vector<float> qt;    // rotated trees: the queries' first box_dims_ features, feature-major
        std::vector<float> boxd;  // rotated trees: each query's box distance to the leaf at hand
    };

    // A rotated tree's first scan of query t's own leaf. Partial sums over the leading
    // kSeedDims features (the principal axes: a lower bound on the full screening distance,
    // and on data of low intrinsic dimension nearly all of it) rank the leaf's points; the k
    // nearest by them are measured exactly first, so the list is full and near its final bound
    // before the rest of the leaf is screened as any other leaf is. (Scanning in tree order
    // instead measures and inserts a point each time the list improves: about k ln(leaf / k)
    // of them.) `self`: the query's own position in the leaf.
    DATAGAUGE_INLINE void seed_from_leaf(const Node& leaf, std::int64_t t, std::int64_t self, Batch& b) const {
        const float* q = b.q.data() + t * dpad_;
        const float* qx = b.qx[static_cast<std::size_t>(t)];
        const float eq = b.eq[static_cast<std::size_t>(t)];
        TopK& top = b.tops[static_cast<std::size_t>(t)];
        const std::int64_t cnt = leaf.end - leaf.begin, stride = padded(cnt);
        const float* cols = cols_.data() + leaf.cols;
        float* sc = b.screened.data();
        const std::int64_t head = std::min<std::int64_t>(d_, kSeedDims);
        for (std::int64_t p0 = 0; p0 < cnt; p0 += kScanBlock)
            block_sums(cols + p0, stride, q, kMissingDistance, head, sc + p0, head);
        // the k smallest partial sums (the query itself left out): a sorted list that a value
        // enters about k ln(leaf / k) times
        float* best = b.values.data();
        const std::int64_t want = std::min<std::int64_t>(cnt - 1, top.capacity());
        float th = threshold(top.bound(), eq);
        if (want > 0) {
            std::int64_t held = 0;
            for (std::int64_t p = 0; p < cnt; ++p) {
                const float v = sc[p];
                if (p == self || (held == want && !(v < best[want - 1]))) continue;
                std::int64_t pos = held < want ? held++ : want - 1;
                while (pos > 0 && v < best[pos - 1]) {
                    best[pos] = best[pos - 1];
                    --pos;
                }
                best[pos] = v;
            }
            const float kth = best[held - 1];
            std::int64_t* order = b.order.data();
            std::int64_t first = 0;
            unsigned char* seeded = b.seeded.data();
            for (std::int64_t p = 0; p < cnt; ++p) {
                if (p == self || !(sc[p] <= kth)) continue;
                order[first++] = leaf.begin + p;
                seeded[p] = 1;
            }
            float bound = top.bound();
            measure_positions(order, first, qx, eq, top, bound, th);
        }
        scan_leaf_rotated(leaf, q, qx, eq, b.exclude[static_cast<std::size_t>(t)], top, th, b.seeded.data());
        std::fill(b.seeded.begin(), b.seeded.begin() + cnt, static_cast<unsigned char>(0));
    }

    // Query t of a batch is this tree's point at tree position p (padding of b.q stays 0).
    DATAGAUGE_INLINE void load_query(std::int64_t p, Batch& b, std::int64_t t) const {
        const float* src = (rotated_ ? ypts_ : pts_).data() + p * d_;
        std::copy(src, src + d_, b.q.begin() + t * dpad_);
        b.qx[static_cast<std::size_t>(t)] = pts_.data() + p * d_;
        b.eq[static_cast<std::size_t>(t)] = rotated_ ? err_[static_cast<std::size_t>(p)] : 0.0f;
    }

    // Lower bound on the squared distance between any point of box [alo, ahi] (padded to
    // dpad_) and any point of node b's box.
    DATAGAUGE_INLINE float box_box_distance(const float* alo, const float* ahi, const Node& b) const {
        const std::size_t w = static_cast<std::size_t>(2 * dpad_);
        const float* blo = pboxes_.data() + static_cast<std::size_t>(&b - nodes_.data()) * w;
        const float* bhi = blo + dpad_;
#if defined(__GNUC__)
        using simd::Float8;
        Float8 s{};
        for (std::int64_t j = 0; j < box_dims_; j += kLanes) {
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

    // Box distances (over box_dims_ features) from the leaf to mp queries laid out
    // feature-major in qt (mp a multiple of kLanes), written to out: eight queries per vector.
    DATAGAUGE_INLINE void leaf_box_distances(const Node& leaf, const float* qt, std::int64_t mp, float* out) const {
        const float* lo = pboxes_.data() + static_cast<std::size_t>(&leaf - nodes_.data()) * 2 * dpad_;
        const float* hi = lo + dpad_;
#if defined(__GNUC__)
        for (std::int64_t t0 = 0; t0 < mp; t0 += kLanes) {
            simd::Float8 s{};
            for (std::int64_t j = 0; j < box_dims_; ++j) {
                const simd::Float8 qv = simd::load(qt + j * mp + t0);
                const simd::Float8 gap =
                    simd::vmax(simd::vmax(simd::splat(lo[j]) - qv, qv - simd::splat(hi[j])), simd::Float8{});
                s += gap * gap;
            }
            std::memcpy(out + t0, &s, sizeof s);
        }
#else
        for (std::int64_t t = 0; t < mp; ++t) {
            float s = 0.0f;
            for (std::int64_t j = 0; j < box_dims_; ++j) {
                const float v = qt[j * mp + t];
                const float gap = std::max(std::max(lo[j] - v, v - hi[j]), 0.0f);
                s += gap * gap;
            }
            out[t] = s;
        }
#endif
    }

    DATAGAUGE_INLINE void batch_search(const Node& own, Batch& b) const {
        const std::int64_t m = own.end - own.begin;
        for (std::int64_t t = 0; t < m; ++t) {
            load_query(own.begin + t, b, t);
            b.tops[static_cast<std::size_t>(t)].reset();
            b.exclude[static_cast<std::size_t>(t)] = offset_ + perm_[static_cast<std::size_t>(own.begin + t)];
        }
        // Each query's own leaf first: every list starts with close neighbours.
        for (std::int64_t t = 0; t < m; ++t) {
            const Node& leaf = nodes_[static_cast<std::size_t>(leaf_of_[static_cast<std::size_t>(own.begin + t)])];
            if (rotated_)
                seed_from_leaf(leaf, t, own.begin + t - leaf.begin, b);
            else
                scan_leaf(leaf, b.q.data() + t * dpad_, b.qx[static_cast<std::size_t>(t)],
                          b.eq[static_cast<std::size_t>(t)], b.exclude[static_cast<std::size_t>(t)],
                          b.tops[static_cast<std::size_t>(t)]);
        }
        const float* lo = pboxes_.data() + static_cast<std::size_t>(&own - nodes_.data()) * 2 * dpad_;
        walk(lo, lo + dpad_, m, b, &own, emax_);
    }

    // The shared walk of a batch of m queries (b.q, b.tops, b.exclude set) inside the box
    // [lo, hi]. A node is skipped when its box is too far for every query of the batch (farther
    // than every seed, or at least every full list's k-th distance); each leaf reached is
    // scanned for the queries whose own test (TopK::prunes) keeps it. `own` (or null): the
    // batch's subtree in this tree, whose leaves were already scanned for their own points.
    // `e`: the largest error of the batch's queries (rotated trees).
    DATAGAUGE_INLINE void walk(const float* lo, const float* hi, std::int64_t m, Batch& b, const Node* own,
                               float e) const {
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
        if (rotated_)
            for (std::int64_t t = 0; t < m; ++t)
                b.th[static_cast<std::size_t>(t)] =
                    threshold(b.tops[static_cast<std::size_t>(t)].bound(), b.eq[static_cast<std::size_t>(t)]);
        auto skip = [&](float dist) { return dist >= bound || dist > seeds; };
        // Rotated trees test a leaf's box against all the batch's queries eight at a time: the
        // queries' leading features are laid out feature-major for that.
        const std::int64_t mp = (m + kLanes - 1) / kLanes * kLanes;
        if (rotated_) {
            b.qt.assign(static_cast<std::size_t>(box_dims_ * mp), 0.0f);
            b.boxd.resize(static_cast<std::size_t>(mp));
            for (std::int64_t t = 0; t < m; ++t)
                for (std::int64_t j = 0; j < box_dims_; ++j)
                    b.qt[static_cast<std::size_t>(j * mp + t)] = b.q[static_cast<std::size_t>(t * dpad_ + j)];
        }
        b.stack.clear();
        b.stack.push_back({&nodes_[0], 0.0f});
        while (!b.stack.empty()) {
            const Pending item = b.stack.back();
            b.stack.pop_back();
            if (skip(item.dist)) continue;
            const Node* node = item.node;
            if (node->left < 0) {
                const bool inside = own && node->begin >= own->begin && node->end <= own->end;
                if (rotated_) leaf_box_distances(*node, b.qt.data(), mp, b.boxd.data());
                for (std::int64_t t = 0; t < m; ++t) {
                    if (inside && own->begin + t >= node->begin && own->begin + t < node->end) continue;  // own leaf
                    TopK& top = b.tops[static_cast<std::size_t>(t)];
                    const float* q = b.q.data() + t * dpad_;
                    const float eq = b.eq[static_cast<std::size_t>(t)];
                    if (rotated_) {
                        // Beyond the list's bound in the rotated frame: nothing in the box can
                        // enter (threshold(), kept per list and renewed after each scan).
                        float& th = b.th[static_cast<std::size_t>(t)];
                        if (b.boxd[static_cast<std::size_t>(t)] > th) continue;
                        scan_leaf_rotated(*node, q, b.qx[static_cast<std::size_t>(t)], eq,
                                          b.exclude[static_cast<std::size_t>(t)], top, th);
                        continue;
                    }
                    if (top.prunes(lower(box_distance(*node, q), eq))) continue;
                    scan_leaf(*node, q, b.qx[static_cast<std::size_t>(t)], eq, b.exclude[static_cast<std::size_t>(t)], top);
                }
                bound = widest();
                continue;
            }
            const Node* l = &nodes_[static_cast<std::size_t>(node->left)];
            const Node* r = &nodes_[static_cast<std::size_t>(node->right)];
            const float dl = lower(box_box_distance(lo, hi, *l), e), dr = lower(box_box_distance(lo, hi, *r), e);
            const bool left_first = dl <= dr;
            const Node* near = left_first ? l : r;
            const Node* far = left_first ? r : l;
            const float dnear = left_first ? dl : dr, dfar = left_first ? dr : dl;
            if (!skip(dfar)) b.stack.push_back({far, dfar});
            if (!skip(dnear)) b.stack.push_back({near, dnear});
        }
    }

    // Returns the number of points whose distance was computed (the search's cost).
    // `query`: the row in the original frame; `framed`: in the tree's frame (the same pointer for
    // an unrotated tree), with its error `eq`.
    DATAGAUGE_INLINE std::int64_t search(const float* query, const float* framed, float eq, std::int64_t exclude,
                                         Scratch& s) const {
        std::copy(framed, framed + d_, s.q.begin());  // padding stays 0
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
                scan_leaf(*node, q, query, eq, exclude, top);
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
            const float dfar = lower(box_distance(*far, q), eq);
            if (!prune(dfar, top)) stack.push_back({far, dfar});
            stack.push_back({near, item.dist});
        }
        return scanned;
    }
};

}  // namespace datagauge
