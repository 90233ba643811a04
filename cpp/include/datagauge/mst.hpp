// Exact Euclidean minimum spanning tree from k-nearest-neighbour lists (Boruvka).
//
// Edges are ordered by the key (squared distance, smaller endpoint, larger endpoint): a strict
// total order, so the tree is unique and Boruvka's rounds never close a cycle. Squared
// distances are the core's exact float32 arithmetic (squared_distance in refine.hpp: the sum
// of squared coordinate differences in feature order, no FMA), the arithmetic of every exact
// k-NN engine, so the neighbour lists and this file agree bit for bit.
//
// A Boruvka round gives every component its cheapest outgoing edge and adds them all. The
// cheapest outgoing edge of a component C is the cheapest, over its points p, of p's cheapest
// edge to a point outside C. The k-NN lists give it almost everywhere:
//
// - a point whose list reaches outside C: the first neighbour outside C in its list is its
//   cheapest outside edge, exactly. The list holds the k smallest (distance, index) pairs, so
//   every point before that neighbour is inside C and every point not listed comes after it;
//   for a fixed p, the order by (distance, index) is the edge-key order.
// - a point whose whole list lies inside C: every point outside C is at squared distance >=
//   d_k(p), the list's last entry. If d_k(p) is larger than the length w* of an edge known to
//   leave C (from the lists of C's points or of other components' points: an edge between
//   two components leaves both), p cannot hold the cheapest edge (proved, no search).
// - the other points (d_k(p) <= w*, or no edge known to leave C) are searched exactly for
//   the nearest point outside C: in the caller's kd-tree over all the points when one is
//   given (the tree the lists came from; KDTree::nearest_outside, its nodes labelled with
//   their component each round and skipped when inside C), else in kd-trees built by the
//   first round that searches (and relabelled, not rebuilt, in later rounds): one per
//   component large at that round (skipped whole when its bounding ball or box is farther
//   than w*, or when it now lies inside C) and one over the points of the small components
//   (subtrees inside C skipped). Searches of one
//   component share w* as it shrinks, across threads; a point whose d_k(p) exceeds the shared
//   w* is dropped without a search.
//
// Node bounds are lower bounds of the float32 distance: the box distance sums per-feature gaps
// no larger than any point's (rounding is monotone) and is shrunk by a margin that covers the
// rounding of both sums, and the ball bound (|q - centre| - radius)^2, computed in double, is
// shrunk by the float32 rounding margin.
//
// Cost: in low dimension the lists prove almost every edge (no point searched on 50,000
// Gaussian points in 3-d with k = 20). The searches grow where whole components are closed
// under their lists in the last rounds (well-separated clusters: every point of them is
// searched once per such round) and in high dimension, where a search scans most points.
//
// So the tree is the exact minimum spanning tree of the points under the key order: its total
// length and its multiset of edge lengths equal those of every minimum spanning tree of the
// float32 distances, and its edges equal them when the distances are distinct.
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "datagauge/edge.hpp"
#include "datagauge/kdtree.hpp"
#include "datagauge/parallel.hpp"
#include "datagauge/refine.hpp"
#include "datagauge/simd.hpp"
#include "datagauge/topk.hpp"

namespace datagauge {

// kd-tree over a subset of the rows whose nodes know whether all their points lie in one
// component. Nodes carry a bounding box and a bounding ball: in more than a few dimensions a
// ball around a cluster is far tighter than its box.
class ComponentTree {
   public:
    // rows: the global row numbers of the points (x is the whole (n, d) array), at least one.
    // The nodes' balls are computed on n_threads threads.
    ComponentTree(const float* x, std::int64_t d, std::vector<std::int64_t> rows, int leaf_size, int n_threads = 1)
        : d_(d), leaf_(leaf_size), perm_(std::move(rows)) {
        if (perm_.empty() || d < 1) throw std::invalid_argument("the tree needs at least one point and one feature");
        if (leaf_size < 1) throw std::invalid_argument("leaf_size must be >= 1");
        const std::int64_t n = static_cast<std::int64_t>(perm_.size());
        build(x, n);
        const std::size_t du = static_cast<std::size_t>(d);
        pts_.resize(perm_.size() * du);
        for (std::size_t t = 0; t < perm_.size(); ++t) {
            const float* src = x + perm_[t] * d;
            std::copy(src, src + d, pts_.begin() + static_cast<std::ptrdiff_t>(t * du));
        }
        center_.assign(nodes_.size() * du, 0.0);
        radius_.assign(nodes_.size(), 0.0);
        // Exact balls for the leaves and the nodes of at least n / kExactBallShare points (the
        // trees' tops, whose balls skip whole components); the others' from their children's
        // below (a looser bound, where the box usually decides anyway).
        const std::int64_t exact_from = std::max<std::int64_t>(1, n / kExactBallShare);
        auto exact_ball = [&](const Node& nd) { return nd.left < 0 || nd.end - nd.begin >= exact_from; };
        parallel_for(nodes_.size(), n_threads, 16, [&](std::size_t nb, std::size_t ne) {
            for (std::size_t ni = nb; ni < ne; ++ni) {
                const Node& nd = nodes_[ni];
                if (!exact_ball(nd)) continue;
                double* c = center_.data() + ni * du;
                for (std::int64_t t = nd.begin; t < nd.end; ++t)
                    for (std::size_t j = 0; j < du; ++j) c[j] += pts_[static_cast<std::size_t>(t) * du + j];
                for (std::size_t j = 0; j < du; ++j) c[j] /= static_cast<double>(nd.end - nd.begin);
                double r2 = 0.0;
                for (std::int64_t t = nd.begin; t < nd.end; ++t) {
                    double s2 = 0.0;
                    for (std::size_t j = 0; j < du; ++j) {
                        const double u = pts_[static_cast<std::size_t>(t) * du + j] - c[j];
                        s2 += u * u;
                    }
                    r2 = std::max(r2, s2);
                }
                radius_[ni] = std::sqrt(r2);
            }
        });
        for (std::size_t ni = nodes_.size(); ni-- > 0;) {  // children after their parents
            const Node& nd = nodes_[ni];
            if (exact_ball(nd)) continue;
            double* c = center_.data() + ni * du;
            const std::size_t l = static_cast<std::size_t>(nd.left), r = static_cast<std::size_t>(nd.right);
            const double wl = static_cast<double>(nodes_[l].end - nodes_[l].begin);
            const double wr = static_cast<double>(nodes_[r].end - nodes_[r].begin);
            for (std::size_t j = 0; j < du; ++j)
                c[j] = (wl * center_[l * du + j] + wr * center_[r * du + j]) / (wl + wr);
            double rad = 0.0;
            for (const std::size_t child : {l, r}) {
                double s2 = 0.0;
                for (std::size_t j = 0; j < du; ++j) {
                    const double u = c[j] - center_[child * du + j];
                    s2 += u * u;
                }
                rad = std::max(rad, std::sqrt(s2) + radius_[child]);
            }
            radius_[ni] = rad * (1.0 + 1e-12);  // the triangle inequality, with room for rounding
        }
        // The core's float32 squared distance is at least the exact one times (1 - (d + 3) u),
        // u = 2^-24 (rounding of d differences, d squares and d sums); twice that is kept.
        ball_margin_ = 1.0 - static_cast<double>(d + 3) * std::ldexp(1.0, -23);
        // The box sum in float32, in any order, is at most the exact one times 1 + (d + 2) u;
        // the core's distance at least the exact one times 1 - (d + 3) u (u = 2^-24): the
        // product of the two margins, with room, and the multiplication rounded down after.
        box_margin_ = static_cast<float>(1.0 - static_cast<double>(2 * d + 12) * std::ldexp(1.0, -24));
        node_comp_.assign(nodes_.size(), -1);
    }

    // Record, for every node, the component all its points share (-1 when they differ).
    // comp[row] >= 0 for every row.
    void label(const std::int64_t* comp) {
        for (std::size_t ni = nodes_.size(); ni-- > 0;) {
            const Node& nd = nodes_[ni];
            if (nd.left < 0) {
                std::int64_t c = comp[perm_[static_cast<std::size_t>(nd.begin)]];
                for (std::int64_t t = nd.begin + 1; t < nd.end && c >= 0; ++t)
                    if (comp[perm_[static_cast<std::size_t>(t)]] != c) c = -1;
                node_comp_[ni] = c;
            } else {
                const std::int64_t l = node_comp_[static_cast<std::size_t>(nd.left)];
                node_comp_[ni] = (l >= 0 && l == node_comp_[static_cast<std::size_t>(nd.right)]) ? l : -1;
            }
        }
    }

    // The component of every point of the tree, or -1 when they differ (after label()).
    std::int64_t component() const { return node_comp_[0]; }

    // A lower bound of the squared distance from q to every point of the tree.
    float root_bound(const float* q) const { return node_bound(0, q); }

    // Improve `best` with the cheapest edge from row p (point q, in component c) to a point of
    // this tree outside c. Only edges ordered before `best` and no longer than `limit` (a
    // squared distance) are looked for; `stack` is scratch space.
    DATAGAUGE_SIMD_CLONES void search(std::int64_t p, std::int64_t c, const std::int64_t* comp, const float* q,
                                      float limit, EdgeKey& best,
                                      std::vector<std::pair<std::int64_t, float>>& stack) const {
        stack.clear();
        stack.emplace_back(0, node_bound(0, q));
        while (!stack.empty()) {
            const auto [ni, bd] = stack.back();
            stack.pop_back();
            if (node_comp_[static_cast<std::size_t>(ni)] == c) continue;
            // A node's bound is at most every point distance in it (same arithmetic, rounding
            // is monotone, or a margin); at an equal distance an index may still win.
            if (bd > limit || (best.valid() && bd > best.w)) continue;
            const Node& nd = nodes_[static_cast<std::size_t>(ni)];
            if (nd.left < 0) {
                for (std::int64_t t = nd.begin; t < nd.end; ++t) {
                    const std::int64_t r = perm_[static_cast<std::size_t>(t)];
                    if (comp[r] == c) continue;
                    const EdgeKey e(squared_distance(q, pts_.data() + t * d_, d_), p, r);
                    if (e.w <= limit && edge_less(e, best)) best = e;
                }
                continue;
            }
            const float dl = node_bound(nd.left, q), dr = node_bound(nd.right, q);
            if (dl <= dr) {
                stack.emplace_back(nd.right, dr);
                stack.emplace_back(nd.left, dl);
            } else {
                stack.emplace_back(nd.left, dl);
                stack.emplace_back(nd.right, dr);
            }
        }
    }

   private:
    struct Node {
        std::int64_t begin, end;
        std::int64_t left = -1, right = -1;
    };

    std::int64_t d_;
    int leaf_;
    std::vector<std::int64_t> perm_;  // tree position -> global row
    std::vector<float> pts_;          // rows in tree order
    std::vector<float> box_;          // per node: lo (d) then hi (d)
    std::vector<double> center_;      // per node: centroid (d)
    std::vector<double> radius_;      // per node: largest distance of a point to the centroid
    double ball_margin_ = 1.0;
    float box_margin_ = 1.0f;
    std::vector<Node> nodes_;         // parents before children
    std::vector<std::int64_t> node_comp_;
    // Points of a node that estimate its features' spread when choosing the split.
    static constexpr std::int64_t kSplitSample = 256;
    static constexpr std::int64_t kExactBallShare = 8;

    // A lower bound of the core's squared distance from q to every point of the node: the
    // larger of the box distance and the ball bound (|q - c| - r)^2, the latter shrunk by the
    // float32 rounding margin and used only well above underflow.
    DATAGAUGE_INLINE float node_bound(std::int64_t ni, const float* q) const {
        const float box = box_distance(ni, q);
        const std::size_t du = static_cast<std::size_t>(d_);
        const double* c = center_.data() + static_cast<std::size_t>(ni) * du;
        // four partial sums in double (their order changes the sum far less than the margin)
        double s4[4] = {0.0, 0.0, 0.0, 0.0};
        std::size_t j = 0;
        for (; j + 4 <= du; j += 4)
            for (std::size_t r = 0; r < 4; ++r) {
                const double u = static_cast<double>(q[j + r]) - c[j + r];
                s4[r] += u * u;
            }
        for (; j < du; ++j) {
            const double u = static_cast<double>(q[j]) - c[j];
            s4[0] += u * u;
        }
        const double s2 = (s4[0] + s4[1]) + (s4[2] + s4[3]);
        const double dc = std::sqrt(s2), gap = dc - radius_[static_cast<std::size_t>(ni)];
        if (!(gap > 1e-6 * dc)) return box;
        const double safe = gap * gap * ball_margin_;
        if (!(safe > 1e-30) || safe <= static_cast<double>(box)) return box;
        float f = static_cast<float>(safe);
        if (static_cast<double>(f) > safe) f = std::nextafter(f, 0.0f);  // round down
        return std::max(f, box);
    }

    // Squared distance from q to the node's box, a lower bound of the core's squared distance
    // to any of its points: per-feature gaps no larger than any point's, their squares summed
    // eight features at a time (another order than squared_distance's), and the sum shrunk by
    // box_margin_, which covers the rounding of both sums.
    DATAGAUGE_INLINE float box_distance(std::int64_t ni, const float* q) const {
        const float* lo = box_.data() + static_cast<std::size_t>(ni) * 2 * static_cast<std::size_t>(d_);
        const float* hi = lo + d_;
        std::int64_t j = 0;
        float s = 0.0f;
#if defined(__GNUC__)
        simd::Float8 acc{};
        for (; j + 8 <= d_; j += 8) {
            const simd::Float8 qv = simd::load(q + j);
            const simd::Float8 gap = simd::vmax(simd::vmax(simd::load(lo + j) - qv, qv - simd::load(hi + j)),
                                                simd::Float8{});
            acc += gap * gap;
        }
        s = simd::hsum(acc);
#endif
        for (; j < d_; ++j) {
            const float t = std::max(std::max(lo[j] - q[j], q[j] - hi[j]), 0.0f);
            s += t * t;
        }
        return std::nextafter(s * box_margin_, 0.0f);
    }

    // Top-down splits at the middle position along the feature of widest spread (estimated on
    // at most kSplitSample evenly spaced points of a larger node), the partition made on the
    // gathered split values; then the boxes bottom-up, exact: a leaf's from its points, a
    // node's as the union of its children's.
    void build(const float* x, std::int64_t n) {
        nodes_.push_back(Node{0, n, -1, -1});
        std::vector<std::int64_t> todo{0};
        std::vector<float> lo(static_cast<std::size_t>(d_)), hi(static_cast<std::size_t>(d_));
        std::vector<std::pair<float, std::int64_t>> vals;
        while (!todo.empty()) {
            const std::int64_t ni = todo.back();
            todo.pop_back();
            const std::int64_t b = nodes_[static_cast<std::size_t>(ni)].begin;
            const std::int64_t e = nodes_[static_cast<std::size_t>(ni)].end;
            if (e - b <= leaf_) continue;
            const std::int64_t step = std::max<std::int64_t>(1, (e - b) / kSplitSample);
            std::fill(lo.begin(), lo.end(), std::numeric_limits<float>::infinity());
            std::fill(hi.begin(), hi.end(), -std::numeric_limits<float>::infinity());
            for (std::int64_t t = b; t < e; t += step) {
                const float* r = x + perm_[static_cast<std::size_t>(t)] * d_;
                for (std::int64_t j = 0; j < d_; ++j) {
                    lo[static_cast<std::size_t>(j)] = std::min(lo[static_cast<std::size_t>(j)], r[j]);
                    hi[static_cast<std::size_t>(j)] = std::max(hi[static_cast<std::size_t>(j)], r[j]);
                }
            }
            std::int64_t split = 0;
            float spread = hi[0] - lo[0];
            for (std::int64_t j = 1; j < d_; ++j)
                if (hi[static_cast<std::size_t>(j)] - lo[static_cast<std::size_t>(j)] > spread) {
                    spread = hi[static_cast<std::size_t>(j)] - lo[static_cast<std::size_t>(j)];
                    split = j;
                }
            // Identical points are split too (ties by row), so a group of copies spreads over
            // small nodes that a search skips once they all join one component.
            const std::int64_t mid = b + (e - b) / 2;
            vals.resize(static_cast<std::size_t>(e - b));
            for (std::int64_t t = b; t < e; ++t) {
                const std::int64_t row = perm_[static_cast<std::size_t>(t)];
                vals[static_cast<std::size_t>(t - b)] = {x[row * d_ + split], row};
            }
            std::nth_element(vals.begin(), vals.begin() + (mid - b), vals.end());  // (value, row)
            for (std::int64_t t = b; t < e; ++t) perm_[static_cast<std::size_t>(t)] = vals[static_cast<std::size_t>(t - b)].second;
            const std::int64_t left = static_cast<std::int64_t>(nodes_.size());
            nodes_.push_back(Node{b, mid, -1, -1});
            nodes_.push_back(Node{mid, e, -1, -1});
            nodes_[static_cast<std::size_t>(ni)].left = left;
            nodes_[static_cast<std::size_t>(ni)].right = left + 1;
            todo.push_back(left + 1);
            todo.push_back(left);
        }
        const std::size_t box_size = 2 * static_cast<std::size_t>(d_);
        box_.resize(nodes_.size() * box_size);
        for (std::size_t ni = nodes_.size(); ni-- > 0;) {  // children after their parents
            const Node& nd = nodes_[ni];
            float* blo = box_.data() + ni * box_size;
            float* bhi = blo + d_;
            if (nd.left >= 0) {
                const float* l = box_.data() + static_cast<std::size_t>(nd.left) * box_size;
                const float* r = box_.data() + static_cast<std::size_t>(nd.right) * box_size;
                for (std::int64_t j = 0; j < d_; ++j) {
                    blo[j] = std::min(l[j], r[j]);
                    bhi[j] = std::max(l[d_ + j], r[d_ + j]);
                }
                continue;
            }
            const float* first = x + perm_[static_cast<std::size_t>(nd.begin)] * d_;
            std::copy(first, first + d_, blo);
            std::copy(first, first + d_, bhi);
            for (std::int64_t t = nd.begin + 1; t < nd.end; ++t) {
                const float* r = x + perm_[static_cast<std::size_t>(t)] * d_;
                for (std::int64_t j = 0; j < d_; ++j) {
                    blo[j] = std::min(blo[j], r[j]);
                    bhi[j] = std::max(bhi[j], r[j]);
                }
            }
        }
    }
};

// Boruvka's algorithm over n points, driven one round at a time so that a caller can release
// the GIL and check for Ctrl-C between steps:
//
//     while (mst.components() > 1) { mst.start_round(t); mst.search(0, mst.n_unproven()); mst.finish_round(); }
//
// search() may run on disjoint ranges from several threads.
class BoruvkaMst {
   public:
    // x: (n, d) points; neighbors: (n, k) the k nearest other points of every point, sorted by
    // (squared distance, index) in the core's arithmetic and complete (an exact search).
    // sqdist (optional, (n, k)): the lists' squared distances as the exact search returned
    // them (the core's arithmetic, bit for bit), which saves measuring them again.
    // tree (optional): a kd-tree over exactly these points (index offset 0), such as the one the
    // lists came from; the exact searches then run in it instead of in trees built here.
    BoruvkaMst(const float* x, std::int64_t n, std::int64_t d, const std::int64_t* neighbors, std::int64_t k,
               int leaf_size, int n_threads, const float* sqdist = nullptr, const KDTree* tree = nullptr)
        : x_(x), n_(n), d_(d), k_(k), nbr_(neighbors), leaf_(leaf_size), tree_(tree) {
        if (n < 2) throw std::invalid_argument("a spanning tree needs at least 2 points");
        if (d < 1) throw std::invalid_argument("the points need at least one feature");
        if (k < 1 || k >= n)
            throw std::invalid_argument("neighbour lists must hold 1 to n - 1 entries, got " + std::to_string(k));
        if (leaf_size < 1) throw std::invalid_argument("leaf_size must be >= 1");
        // Checked before any tree is built: NaN would break the ordering nth_element relies on.
        for (std::int64_t i = 0; i < n * d; ++i)
            if (!std::isfinite(x[i]))
                throw std::invalid_argument("data must be finite; row " + std::to_string(i / d) +
                                            " holds NaN or infinity");
        lsq_.resize(static_cast<std::size_t>(n * k));
        std::vector<std::int64_t> bad(static_cast<std::size_t>(n), -1);
        parallel_for(static_cast<std::size_t>(n), n_threads, 256, [&](std::size_t b, std::size_t e) {
            for (std::size_t i = b; i < e; ++i) {
                const std::int64_t p = static_cast<std::int64_t>(i);
                const std::int64_t* row = nbr_ + p * k;
                float* out = lsq_.data() + p * k;
                for (std::int64_t r = 0; r < k; ++r)
                    if (row[r] < 0 || row[r] >= n || row[r] == p) {
                        bad[i] = r;
                        break;
                    }
                if (bad[i] >= 0) continue;
                if (sqdist != nullptr) {
                    std::copy(sqdist + p * k, sqdist + (p + 1) * k, out);
                    for (std::int64_t r = 0; r < k; ++r)
                        if (!(out[r] >= 0.0f && out[r] < std::numeric_limits<float>::infinity())) {
                            bad[i] = r;
                            break;
                        }
                }
                // Eight lists entries at a time: eight independent sums, each bit-identical to
                // squared_distance (a short last group repeats its final row).
                for (std::int64_t r0 = 0; r0 < k && sqdist == nullptr; r0 += 8) {
                    const std::int64_t g = std::min<std::int64_t>(8, k - r0);
                    const float* rows[8];
                    float sq[8];
                    for (std::int64_t t = 0; t < 8; ++t) rows[t] = x + row[r0 + std::min(t, g - 1)] * d;
                    squared_distance8(x + p * d, rows, d, sq);
                    std::copy(sq, sq + g, out + r0);
                }
                for (std::int64_t r = 1; r < k; ++r)
                    if (!neighbor_less(out[r - 1], row[r - 1], out[r], row[r])) {
                        bad[i] = r;
                        break;
                    }
            }
        });
        for (std::int64_t p = 0; p < n; ++p)
            if (bad[static_cast<std::size_t>(p)] >= 0)
                throw std::invalid_argument(
                    "neighbour list of point " + std::to_string(p) + " is not a sorted list of other points (entry " +
                    std::to_string(bad[static_cast<std::size_t>(p)]) +
                    "); pass the exact k nearest neighbours, sorted by (distance, index)");
        if (tree_ != nullptr) {
            if (tree_->index_offset() != 0 || !tree_->holds(x, n, d))
                throw std::invalid_argument("the kd-tree was built from other points than the data");
            position_.resize(static_cast<std::size_t>(n));
            for (std::int64_t t = 0; t < n; ++t) position_[static_cast<std::size_t>(tree_->row_at(t))] = t;
            node_label_.resize(static_cast<std::size_t>(tree_->n_nodes()));
        }
        parent_.resize(static_cast<std::size_t>(n));
        std::iota(parent_.begin(), parent_.end(), std::int64_t{0});
        comp_.resize(static_cast<std::size_t>(n));
        best_.resize(static_cast<std::size_t>(n));
        cand_.resize(static_cast<std::size_t>(n));
        shared_w_ = std::make_unique<std::atomic<float>[]>(static_cast<std::size_t>(n));
        components_ = n;
    }

    std::int64_t components() const { return components_; }
    std::int64_t n_unproven() const { return static_cast<std::int64_t>(unproven_.size()); }
    std::int64_t rounds() const { return rounds_; }
    std::int64_t searched() const { return searched_; }
    std::int64_t proved() const { return proved_; }

    void start_round(int n_threads) {
        for (std::int64_t i = 0; i < n_; ++i) comp_[static_cast<std::size_t>(i)] = find(i);
        // Each point's cheapest outside edge from its list, when the list reaches outside.
        parallel_for(static_cast<std::size_t>(n_), n_threads, 1024, [&](std::size_t b, std::size_t e) {
            for (std::size_t i = b; i < e; ++i) {
                const std::int64_t p = static_cast<std::int64_t>(i), c = comp_[i];
                EdgeKey cand;
                for (std::int64_t r = 0; r < k_; ++r) {
                    const std::int64_t q = nbr_[p * k_ + r];
                    if (comp_[static_cast<std::size_t>(q)] != c) {
                        cand = EdgeKey(lsq_[static_cast<std::size_t>(p * k_ + r)], p, q);
                        break;
                    }
                }
                cand_[i] = cand;
            }
        });
        for (std::int64_t p = 0; p < n_; ++p) best_[static_cast<std::size_t>(comp_[static_cast<std::size_t>(p)])] = EdgeKey();
        // An edge between two components leaves both: it bounds the cheapest edge of each.
        for (std::int64_t p = 0; p < n_; ++p) offer(cand_[static_cast<std::size_t>(p)]);
        // Points whose list stays inside their component and whose k-th distance does not
        // prove them out of the running are searched, grouped by component.
        unproven_.clear();
        for (std::int64_t p = 0; p < n_; ++p) {
            if (cand_[static_cast<std::size_t>(p)].valid()) continue;
            const EdgeKey& b = best_[static_cast<std::size_t>(comp_[static_cast<std::size_t>(p)])];
            if (b.valid() && lsq_[static_cast<std::size_t>(p * k_ + k_ - 1)] > b.w) {
                ++proved_;
                continue;
            }
            unproven_.push_back(p);
        }
        std::stable_sort(unproven_.begin(), unproven_.end(), [&](std::int64_t u, std::int64_t v) {
            return comp_[static_cast<std::size_t>(u)] < comp_[static_cast<std::size_t>(v)];
        });
        found_.assign(unproven_.size(), EdgeKey());
        skipped_.assign(unproven_.size(), 0);
        if (!unproven_.empty()) {
            if (tree_ != nullptr) tree_->label_nodes(comp_.data(), node_label_.data());
            else build_forest(n_threads);
        }
        for (std::int64_t p = 0; p < n_; ++p)
            if (comp_[static_cast<std::size_t>(p)] == p)
                shared_w_[static_cast<std::size_t>(p)].store(best_[static_cast<std::size_t>(p)].w, std::memory_order_relaxed);
    }

    // Exact searches of unproven points [begin, end), safe to run on disjoint ranges from
    // several threads. Consecutive points of one component share the best edge found so far
    // as their bound, and every thread shares, per component, the shortest length of an edge
    // known to leave it (found from either end: an edge longer than that cannot be the
    // component's cheapest). A point whose k-th distance exceeds that length is skipped.
    void search(std::int64_t begin, std::int64_t end) {
        std::vector<std::pair<std::int64_t, float>> stack;
        std::vector<std::pair<float, std::size_t>> order;
        KDTree::OutsideScratch scratch;
        std::int64_t current = -1;
        EdgeKey bound;
        for (std::int64_t t = begin; t < end; ++t) {
            const std::int64_t p = unproven_[static_cast<std::size_t>(t)];
            const std::int64_t c = comp_[static_cast<std::size_t>(p)];
            if (c != current) {
                current = c;
                bound = best_[static_cast<std::size_t>(c)];
            }
            const float limit = shared_w_[static_cast<std::size_t>(c)].load(std::memory_order_relaxed);
            if (lsq_[static_cast<std::size_t>(p * k_ + k_ - 1)] > limit) {
                skipped_[static_cast<std::size_t>(t)] = 1;
                continue;
            }
            EdgeKey e = bound;
            if (tree_ != nullptr) {
                tree_->nearest_outside(position_[static_cast<std::size_t>(p)], c, comp_.data(), node_label_.data(),
                                       limit, e, scratch);
            } else {
                search_forest(p, c, limit, e, stack, order);
            }
            if (edge_less(e, bound)) {
                bound = e;
                found_[static_cast<std::size_t>(t)] = e;
                lower(comp_[static_cast<std::size_t>(e.a)], e.w);
                lower(comp_[static_cast<std::size_t>(e.b)], e.w);
            }
        }
    }

    void finish_round() {
        for (std::size_t t = 0; t < unproven_.size(); ++t) {
            offer(found_[t]);
            if (skipped_[t]) ++proved_;
            else ++searched_;
        }
        std::vector<EdgeKey> chosen;
        for (std::int64_t p = 0; p < n_; ++p) {
            if (comp_[static_cast<std::size_t>(p)] != p) continue;  // one entry per component root
            const EdgeKey& b = best_[static_cast<std::size_t>(p)];
            if (!b.valid()) throw std::logic_error("a component has no outgoing edge");
            chosen.push_back(b);
        }
        std::sort(chosen.begin(), chosen.end(), edge_less);
        for (const EdgeKey& e : chosen) {
            const std::int64_t ra = find(e.a), rb = find(e.b);
            if (ra == rb) continue;  // the same edge, chosen by both of its components
            parent_[static_cast<std::size_t>(std::max(ra, rb))] = std::min(ra, rb);
            edges_.push_back(e);
            --components_;
        }
        ++rounds_;
    }

    // The n - 1 edges, sorted by key.
    std::vector<EdgeKey> edges() const {
        std::vector<EdgeKey> out = edges_;
        std::sort(out.begin(), out.end(), edge_less);
        return out;
    }

   private:
    const float* x_;
    static constexpr std::int64_t kLargeComponent = 256;
    static constexpr std::int64_t kMaxTrees = 64;
    std::int64_t n_, d_, k_;
    const std::int64_t* nbr_;
    int leaf_;
    const KDTree* tree_;                 // the caller's search tree, or null
    std::vector<std::int64_t> position_;    // its tree position of every row
    std::vector<std::int64_t> node_label_;  // its nodes' components, this round (or -1)
    std::vector<ComponentTree> forest_;  // else the search trees (built once, relabelled each round)
    std::vector<float> lsq_;             // squared distances of the lists
    std::vector<std::int64_t> parent_;   // union-find
    std::vector<std::int64_t> comp_;     // component root of every point, this round
    std::vector<EdgeKey> best_;          // per component root: cheapest outgoing edge so far
    std::vector<EdgeKey> cand_;          // per point: cheapest outside edge from its list
    std::vector<std::int64_t> unproven_;
    std::vector<EdgeKey> found_;                     // per unproven point: its improvement
    std::vector<std::uint8_t> skipped_;              // per unproven point: ruled out in search
    std::unique_ptr<std::atomic<float>[]> shared_w_;  // per component root: shortest found
    std::vector<EdgeKey> edges_;
    std::int64_t components_ = 0, rounds_ = 0, searched_ = 0, proved_ = 0;

    // The trees of a round: one per large component, which a search from another component
    // skips whole (by its bounding ball) when the component is far, and one over the points of
    // all smaller components, whose subtrees inside the searching point's component are
    // skipped. Components are large from max(256, n / 64) points: at most 64 trees.
    //
    // The trees are built by the first round that searches and kept: their points never change,
    // only the components do, and relabelling their nodes each round (label()) is enough for a
    // search to skip a tree, or a subtree, inside its own component. (Later rounds' components
    // are unions of the first one's, so each tree still lies in one component or in the small
    // ones; rebuilding them per round cost more than the searches at 100k x 64.)
    void build_forest(int n_threads) {
        if (forest_.empty()) make_forest(n_threads);
        for (ComponentTree& t : forest_) t.label(comp_.data());
    }

    void make_forest(int n_threads) {
        std::vector<std::int64_t> size(static_cast<std::size_t>(n_), 0);
        for (std::int64_t p = 0; p < n_; ++p) ++size[static_cast<std::size_t>(comp_[static_cast<std::size_t>(p)])];
        const std::int64_t large = std::max<std::int64_t>(kLargeComponent, n_ / kMaxTrees);
        std::vector<std::int64_t> slot(static_cast<std::size_t>(n_), -1);
        std::vector<std::vector<std::int64_t>> rows(1);  // rows[0]: the small components
        for (std::int64_t p = 0; p < n_; ++p) {
            const std::size_t c = static_cast<std::size_t>(comp_[static_cast<std::size_t>(p)]);
            if (size[c] < large) {
                rows[0].push_back(p);
                continue;
            }
            if (slot[c] < 0) {
                slot[c] = static_cast<std::int64_t>(rows.size());
                rows.emplace_back();
            }
            rows[static_cast<std::size_t>(slot[c])].push_back(p);
        }
        for (auto& r : rows)
            if (!r.empty()) forest_.emplace_back(x_, d_, std::move(r), leaf_, n_threads);
    }

    // The search in the trees built here: the trees nearest first; a tree farther than the
    // bounds is skipped with the rest.
    void search_forest(std::int64_t p, std::int64_t c, float limit, EdgeKey& e,
                       std::vector<std::pair<std::int64_t, float>>& stack,
                       std::vector<std::pair<float, std::size_t>>& order) const {
        const float* q = x_ + p * d_;
        order.clear();
        for (std::size_t ti = 0; ti < forest_.size(); ++ti)
            if (forest_[ti].component() != c) order.emplace_back(forest_[ti].root_bound(q), ti);
        std::sort(order.begin(), order.end());
        for (const auto& [root, ti] : order) {
            if (root > limit || (e.valid() && root > e.w)) break;
            forest_[ti].search(p, c, comp_.data(), q, limit, e, stack);
        }
    }

    // An edge between two components: a candidate for the cheapest edge of both.
    void offer(const EdgeKey& e) {
        if (!e.valid()) return;
        for (const std::int64_t end : {e.a, e.b}) {
            EdgeKey& b = best_[static_cast<std::size_t>(comp_[static_cast<std::size_t>(end)])];
            if (edge_less(e, b)) b = e;
        }
    }

    // Lower component c's shared bound to w (atomic minimum).
    void lower(std::int64_t c, float w) {
        std::atomic<float>& shared = shared_w_[static_cast<std::size_t>(c)];
        float cur = shared.load(std::memory_order_relaxed);
        while (w < cur && !shared.compare_exchange_weak(cur, w, std::memory_order_relaxed)) {
        }
    }

    std::int64_t find(std::int64_t i) {
        while (parent_[static_cast<std::size_t>(i)] != i) {
            parent_[static_cast<std::size_t>(i)] = parent_[static_cast<std::size_t>(parent_[static_cast<std::size_t>(i)])];
            i = parent_[static_cast<std::size_t>(i)];
        }
        return i;
    }
};

}  // namespace datagauge
