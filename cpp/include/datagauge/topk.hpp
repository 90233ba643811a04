// Sorted top-k neighbour lists: the mergeable partial result of every k-NN search.
//
// A list is k (distance, index) pairs sorted ascending by (distance, index). Missing entries
// are the sentinel (+inf, -1) and sort last. Partial lists computed over disjoint blocks of
// the database merge into the list over their union, so a search can run block by block or
// on several workers and give the same answer as one search over everything.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <vector>

namespace datagauge {

constexpr float kMissingDistance = std::numeric_limits<float>::infinity();
constexpr std::int64_t kMissingIndex = -1;

// Strict total order used everywhere: by distance, then by index; missing entries last.
inline bool neighbor_less(float da, std::int64_t ia, float db, std::int64_t ib) {
    const bool ma = ia < 0, mb = ib < 0;
    if (ma != mb) return mb;  // a present entry precedes a missing one
    if (da < db) return true;
    if (db < da) return false;
    return ia < ib;
}

// A bounded list of the k best (distance, index) pairs seen, kept sorted.
class TopK {
   public:
    explicit TopK(int k) : k_(k), dist_(static_cast<std::size_t>(k)), idx_(static_cast<std::size_t>(k)) {
        reset();
    }
    // An empty list. With a seed bound, only candidates at distance <= seed may enter: the
    // list is then the k best of those (a search seeded with the k-th distance another block
    // already found returns just what can still change the merged list). Callers filter by
    // bound() before push(); the default (+inf) is no bound.
    void reset(float seed = kMissingDistance) {
        size_ = 0;
        seed_ = seed;
        std::fill(dist_.begin(), dist_.end(), kMissingDistance);
        std::fill(idx_.begin(), idx_.end(), kMissingIndex);
    }
    // The largest distance a candidate may have to enter (when the list is full it must also
    // beat the k-th entry, or tie with it with a smaller index): the seed, or the k-th distance
    // once the list is full if that is smaller.
    float bound() const {
        return size_ < k_ ? seed_ : std::min(dist_[static_cast<std::size_t>(k_ - 1)], seed_);
    }
    // Whether a region whose points are all at distance >= box_dist can be skipped: it holds
    // nothing within the seed (box_dist > seed; a point exactly at the seed is still wanted),
    // and, once the list is full, nothing strictly closer than its k-th entry.
    bool prunes(float box_dist) const {
        return box_dist > seed_ || (size_ == k_ && box_dist >= dist_[static_cast<std::size_t>(k_ - 1)]);
    }
    bool full() const { return size_ == k_; }
    int capacity() const { return k_; }
    float seed() const { return seed_; }
    int size() const { return size_; }

    void push(float d, std::int64_t i) {
        int pos = size_ < k_ ? size_ : k_ - 1;
        if (size_ == k_ && !neighbor_less(d, i, dist_[static_cast<std::size_t>(pos)], idx_[static_cast<std::size_t>(pos)]))
            return;
        // Shift larger entries right to open the slot.
        while (pos > 0 && neighbor_less(d, i, dist_[static_cast<std::size_t>(pos - 1)], idx_[static_cast<std::size_t>(pos - 1)])) {
            dist_[static_cast<std::size_t>(pos)] = dist_[static_cast<std::size_t>(pos - 1)];
            idx_[static_cast<std::size_t>(pos)] = idx_[static_cast<std::size_t>(pos - 1)];
            --pos;
        }
        dist_[static_cast<std::size_t>(pos)] = d;
        idx_[static_cast<std::size_t>(pos)] = i;
        if (size_ < k_) ++size_;
    }

    void write(float* dist_out, std::int64_t* idx_out) const {
        for (int j = 0; j < k_; ++j) {
            dist_out[j] = dist_[static_cast<std::size_t>(j)];
            idx_out[j] = idx_[static_cast<std::size_t>(j)];
        }
    }

   private:
    int k_;
    int size_ = 0;
    float seed_ = kMissingDistance;
    std::vector<float> dist_;
    std::vector<std::int64_t> idx_;
};

// Merge row r of two sorted partial lists (widths ka, kb) into the k best of their union.
// An index present in both inputs is kept once.
inline void merge_row(const float* da, const std::int64_t* ia, int ka, const float* db,
                      const std::int64_t* ib, int kb, int k, float* dout, std::int64_t* iout) {
    int a = 0, b = 0, o = 0;
    std::int64_t last = kMissingIndex;
    bool have_last = false;
    while (o < k && (a < ka || b < kb)) {
        bool take_a;
        if (a >= ka) take_a = false;
        else if (b >= kb) take_a = true;
        else take_a = !neighbor_less(db[b], ib[b], da[a], ia[a]);
        const float d = take_a ? da[a] : db[b];
        const std::int64_t i = take_a ? ia[a] : ib[b];
        if (take_a) ++a; else ++b;
        if (i < 0) break;  // only missing entries remain
        if (have_last && i == last) continue;
        dout[o] = d;
        iout[o] = i;
        last = i;
        have_last = true;
        ++o;
    }
    for (; o < k; ++o) {
        dout[o] = kMissingDistance;
        iout[o] = kMissingIndex;
    }
}

}  // namespace datagauge
