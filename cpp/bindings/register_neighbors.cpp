#include <cmath>
#include <memory>
#include <tuple>
#include <string>
#include <vector>

#include "common.hpp"
#include "datagauge/brute.hpp"
#include "datagauge/kdtree.hpp"
#include "datagauge/refine.hpp"
#include "datagauge/screen.hpp"
#include "datagauge/simd.hpp"
#include "datagauge/topk.hpp"

namespace datagauge::bindings {

namespace {

constexpr std::int64_t kBlockRows = 1 << 15;  // rows between Ctrl-C checks
constexpr std::int64_t kChunkRows = 256;      // rows a thread takes at a time
constexpr std::int64_t kTreeRedoRows = 256;   // unproven brute-force rows redone by a kd-tree above this

std::pair<FloatArray, IndexArray> alloc_lists(std::int64_t rows, std::int64_t k) {
    return {FloatArray({rows, k}), IndexArray({rows, k})};
}

// Pointer to the optional per-query excluded index (nullptr when absent), checked: 1-D, m rows.
const std::int64_t* exclude_data(const std::optional<IndexArray>& exclude, std::int64_t m) {
    if (!exclude) return nullptr;
    require_ndim(*exclude, 1, "exclude");
    require_rows(*exclude, m, "exclude", "queries");
    return exclude->data();
}

// Pointer to the optional per-query bound on squared distances (nullptr when absent), checked:
// 1-D, m rows, no NaN (+inf is no bound).
const float* bounds_data(const std::optional<FloatArray>& bounds, std::int64_t m) {
    if (!bounds) return nullptr;
    require_ndim(*bounds, 1, "bounds");
    require_rows(*bounds, m, "bounds", "queries");
    const float* p = bounds->data();
    for (std::int64_t q = 0; q < m; ++q)
        if (std::isnan(p[q]))
            throw std::invalid_argument("bounds must not be NaN (row " + std::to_string(q) +
                                        "); use +inf for a query without a bound");
    return p;
}

void require_query_dim(const KDTree& tree, const FloatArray& queries) {
    require_ndim(queries, 2, "queries");
    if (queries.shape(1) != tree.dim())
        throw std::invalid_argument("queries have " + std::to_string(queries.shape(1)) +
                                    " features but the tree has " + std::to_string(tree.dim()));
}

// Rows in a rotated frame and their errors (see kdtree.hpp), checked against `rows`: both or
// neither given, the same shape, errors finite and >= 0. Returns (rows, errors) pointers.
std::pair<const float*, const float*> framed_data(const FloatArray& rows, const std::optional<FloatArray>& rotated,
                                                  const std::optional<FloatArray>& errors, const char* what) {
    if (!rotated && !errors) return {nullptr, nullptr};
    if (!rotated || !errors)
        throw std::invalid_argument(std::string("give both the rotated ") + what + " and their errors, or neither");
    require_ndim(*rotated, 2, "rotated");
    if (rotated->shape(0) != rows.shape(0) || rotated->shape(1) != rows.shape(1))
        throw std::invalid_argument(std::string("the rotated ") + what + " must have the shape of the " + what);
    require_ndim(*errors, 1, "errors");
    require_rows(*errors, rows.shape(0), "errors", what);
    const float* ep = errors->data();
    for (py::ssize_t i = 0; i < errors->shape(0); ++i)
        if (!(ep[i] >= 0.0f && std::isfinite(ep[i])))
            throw std::invalid_argument("errors must be finite and >= 0 (row " + std::to_string(i) + ")");
    return {rotated->data(), ep};
}

std::unique_ptr<KDTree> make_tree(const FloatArray& data, int leaf_size, std::int64_t index_offset,
                                  std::optional<FloatArray> rotated, std::optional<FloatArray> errors,
                                  std::int64_t frame, int n_threads) {
    require_ndim(data, 2, "data");
    if (data.shape(0) < 1 || data.shape(1) < 1) throw std::invalid_argument("data must be non-empty");
    if (index_offset < 0) throw std::invalid_argument("index_offset must be >= 0");
    const auto [rp, ep] = framed_data(data, rotated, errors, "data");
    const float* ptr = data.data();
    const std::int64_t n = data.shape(0), d = data.shape(1);
    py::gil_scoped_release nogil;
    return std::make_unique<KDTree>(ptr, n, d, leaf_size, index_offset, rp, ep, frame, n_threads);
}

// The queries in the tree's frame, checked: required by a rotated tree, refused by another.
std::pair<const float*, const float*> query_frame(const KDTree& tree, const FloatArray& queries,
                                                  const std::optional<FloatArray>& rotated,
                                                  const std::optional<FloatArray>& errors) {
    const auto framed = framed_data(queries, rotated, errors, "queries");
    if (tree.rotated() && framed.first == nullptr)
        throw std::invalid_argument("the tree is rotated: give the queries in its frame (rotated_queries, query_errors)");
    if (!tree.rotated() && framed.first != nullptr)
        throw std::invalid_argument("the tree is not rotated: do not give rotated queries");
    return framed;
}

py::tuple tree_query(const KDTree& tree, const FloatArray& queries, int k, std::optional<IndexArray> exclude,
                     int n_threads, std::optional<FloatArray> bounds, std::optional<FloatArray> rotated_queries,
                     std::optional<FloatArray> query_errors) {
    require_k(k);
    require_query_dim(tree, queries);
    const std::int64_t m = queries.shape(0);
    const std::int64_t* ex = exclude_data(exclude, m);
    const float* bp = bounds_data(bounds, m);
    const auto [rq, re] = query_frame(tree, queries, rotated_queries, query_errors);
    auto [dist, idx] = alloc_lists(m, k);
    float* dp = dist.mutable_data();
    std::int64_t* ip = idx.mutable_data();
    const float* qp = queries.data();
    run_blocks_nogil(m, n_threads, kBlockRows, kChunkRows,
                     [&](std::int64_t b, std::int64_t e) { tree.query(qp, ex, b, e, k, dp, ip, bp, rq, re); });
    return py::make_tuple(dist, idx);
}

std::int64_t tree_query_cost(const KDTree& tree, const FloatArray& queries, int k, std::optional<IndexArray> exclude,
                             std::optional<FloatArray> bounds, std::optional<FloatArray> rotated_queries,
                             std::optional<FloatArray> query_errors) {
    require_k(k);
    require_query_dim(tree, queries);
    const std::int64_t m = queries.shape(0);
    const std::int64_t* ex = exclude_data(exclude, m);
    const float* bp = bounds_data(bounds, m);
    const auto [rq, re] = query_frame(tree, queries, rotated_queries, query_errors);
    const float* qp = queries.data();
    std::vector<float> dist(static_cast<std::size_t>(k));
    std::vector<std::int64_t> idx(static_cast<std::size_t>(k));
    std::int64_t total = 0;
    py::gil_scoped_release nogil;
    const std::int64_t d = tree.dim();
    for (std::int64_t q = 0; q < m; ++q)  // one row at a time into one row of output
        total += tree.query(qp + q * d, ex ? ex + q : nullptr, 0, 1, k, dist.data(), idx.data(), bp ? bp + q : nullptr,
                            rq ? rq + q * d : nullptr, re ? re + q : nullptr);
    return total;
}

py::tuple tree_query_tree(const KDTree& tree, const KDTree& qtree, int k, std::optional<IndexArray> exclude,
                          std::optional<FloatArray> bounds, int n_threads) {
    require_k(k);
    if (qtree.dim() != tree.dim())
        throw std::invalid_argument("the query tree has " + std::to_string(qtree.dim()) +
                                    " features but the tree has " + std::to_string(tree.dim()));
    if (qtree.rotated() != tree.rotated() || qtree.frame() != tree.frame())
        throw std::invalid_argument("the query tree is built in another frame than the tree (rotated " +
                                    std::to_string(qtree.rotated()) + " frame " + std::to_string(qtree.frame()) +
                                    " vs rotated " + std::to_string(tree.rotated()) + " frame " +
                                    std::to_string(tree.frame()) + "): build both with the same frame");
    const std::int64_t m = qtree.size();
    const std::int64_t* ex = exclude_data(exclude, m);
    const float* bp = bounds_data(bounds, m);
    auto [dist, idx] = alloc_lists(m, k);
    float* dp = dist.mutable_data();
    std::int64_t* ip = idx.mutable_data();
    run_blocks_nogil(qtree.n_batches(), n_threads, 256, 2, [&](std::int64_t b, std::int64_t e) {
        tree.query_tree(qtree, ex, bp, b, e, k, dp, ip);
    });
    return py::make_tuple(dist, idx);
}

py::tuple tree_self_query(const KDTree& tree, int k, int n_threads) {
    require_k(k);
    const std::int64_t n = tree.size();
    auto [dist, idx] = alloc_lists(n, k);
    float* dp = dist.mutable_data();
    std::int64_t* ip = idx.mutable_data();
    // Work is split by batches of queries (subtrees), a few at a time per thread.
    run_blocks_nogil(tree.n_batches(), n_threads, 256, 2,
                     [&](std::int64_t b, std::int64_t e) { tree.self_query_batches(b, e, k, dp, ip); });
    return py::make_tuple(dist, idx);
}

std::int64_t tree_probe(const KDTree& tree, const IndexArray& positions, int k) {
    require_k(k);
    require_ndim(positions, 1, "positions");
    const std::int64_t m = positions.shape(0);
    const std::int64_t* pp = positions.data();
    for (std::int64_t t = 0; t < m; ++t)
        if (pp[t] < 0 || pp[t] >= tree.size())
            throw std::invalid_argument("positions must lie in [0, size), got " + std::to_string(pp[t]));
    py::gil_scoped_release nogil;
    return tree.probe(pp, m, k);
}

py::tuple merge_topk(const FloatArray& dist_a, const IndexArray& idx_a, const FloatArray& dist_b,
                     const IndexArray& idx_b, int k) {
    require_k(k);
    for (const py::array* a : {static_cast<const py::array*>(&dist_a), static_cast<const py::array*>(&idx_a),
                               static_cast<const py::array*>(&dist_b), static_cast<const py::array*>(&idx_b)})
        require_ndim(*a, 2, "partial lists");
    if (dist_a.shape(0) != idx_a.shape(0) || dist_a.shape(1) != idx_a.shape(1) ||
        dist_b.shape(0) != idx_b.shape(0) || dist_b.shape(1) != idx_b.shape(1))
        throw std::invalid_argument("distances and indices of a partial list must have the same shape");
    require_rows(dist_b, dist_a.shape(0), "second partial list", "the first");
    const std::int64_t m = dist_a.shape(0);
    const int ka = static_cast<int>(dist_a.shape(1)), kb = static_cast<int>(dist_b.shape(1));
    auto [dist, idx] = alloc_lists(m, k);
    float* dp = dist.mutable_data();
    std::int64_t* ip = idx.mutable_data();
    const float *da = dist_a.data(), *db = dist_b.data();
    const std::int64_t *ia = idx_a.data(), *ib = idx_b.data();
    run_blocks_nogil(m, 1, kBlockRows * 8, kBlockRows * 8, [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t r = b; r < e; ++r)
            merge_row(da + r * ka, ia + r * ka, ka, db + r * kb, ib + r * kb, kb, k, dp + r * k, ip + r * k);
    });
    return py::make_tuple(dist, idx);
}

py::tuple refine(const FloatArray& data, const FloatArray& queries, const IndexArray& candidates,
                 std::optional<IndexArray> exclude, int k, int n_threads) {
    require_k(k);
    require_ndim(data, 2, "data");
    require_ndim(queries, 2, "queries");
    require_ndim(candidates, 2, "candidates");
    if (queries.shape(1) != data.shape(1))
        throw std::invalid_argument("queries and data must have the same number of features");
    require_rows(candidates, queries.shape(0), "candidates", "queries");
    const std::int64_t m = queries.shape(0), n = data.shape(0), d = data.shape(1), c = candidates.shape(1);
    const std::int64_t* ex = exclude_data(exclude, m);
    auto [dist, idx] = alloc_lists(m, k);
    float* dp = dist.mutable_data();
    std::int64_t* ip = idx.mutable_data();
    const float *xp = data.data(), *qp = queries.data();
    const std::int64_t* cp = candidates.data();
    run_blocks_nogil(m, n_threads, kBlockRows, kChunkRows, [&](std::int64_t b, std::int64_t e) {
        refine_rows(xp, n, d, qp, cp, c, ex, b, e, k, dp, ip);
    });
    return py::make_tuple(dist, idx);
}

void check_self_knn_args(const FloatArray& data, int k, int n_candidates) {
    require_k(k);
    require_ndim(data, 2, "data");
    const std::int64_t n = data.shape(0), d = data.shape(1);
    if (d < 1) throw std::invalid_argument("data must have at least one feature");
    if (k >= n) throw std::invalid_argument("k must be < the number of points, got k=" + std::to_string(k));
    if (n_candidates < k || n_candidates > n - 1)
        throw std::invalid_argument("n_candidates must lie in [k, n - 1], got " + std::to_string(n_candidates));
}

// Screening (every round of the schedule, Ctrl-C checked between rounds), exact re-ranking
// into the (n, k) outputs; returns the rows whose candidates could not be proven complete.
template <class Search>
std::vector<std::int64_t> screen_and_refine(Search& search, std::int64_t n, int k, float* dp, std::int64_t* ip,
                                            int n_threads) {
    for (std::int64_t r = 0; r < search.n_rounds(); ++r) {
        {
            py::gil_scoped_release nogil;
            search.run_round(r, n_threads);
        }
        if (PyErr_CheckSignals() != 0) throw py::error_already_set();
    }
    std::vector<std::uint8_t> proven(static_cast<std::size_t>(n));
    run_blocks_nogil(n, n_threads, kBlockRows, kChunkRows, [&](std::int64_t b, std::int64_t e) {
        search.finish_rows(b, e, k, dp, ip, proven.data());
    });
    std::vector<std::int64_t> redo;
    for (std::int64_t i = 0; i < n; ++i)
        if (!proven[static_cast<std::size_t>(i)]) redo.push_back(i);
    return redo;
}

// Rows `redo` of the (n, k) outputs searched again exactly over all points.
void redo_rows(const float* xp, std::int64_t n, std::int64_t d, int k, std::vector<std::int64_t>& redo, float* dp,
               std::int64_t* ip, int n_threads) {
    const std::int64_t m = static_cast<std::int64_t>(redo.size());
    if (m > kTreeRedoRows) {
        // Many unproven rows (large groups of duplicates): a kd-tree prunes identical points
        // (zero-size boxes) where a scan of all points per row would be quadratic.
        std::vector<float> queries(static_cast<std::size_t>(m * d));
        for (std::int64_t t = 0; t < m; ++t)
            std::copy(xp + redo[static_cast<std::size_t>(t)] * d, xp + (redo[static_cast<std::size_t>(t)] + 1) * d,
                      queries.begin() + t * d);
        std::unique_ptr<KDTree> tree;
        {
            py::gil_scoped_release nogil;
            tree = std::make_unique<KDTree>(xp, n, d, 32, 0);
        }
        std::vector<float> td(static_cast<std::size_t>(m * k));
        std::vector<std::int64_t> ti(static_cast<std::size_t>(m * k));
        run_blocks_nogil(m, n_threads, kBlockRows, 16, [&](std::int64_t b, std::int64_t e) {
            tree->query(queries.data(), redo.data(), b, e, k, td.data(), ti.data());
        });
        for (std::int64_t t = 0; t < m; ++t) {
            const std::int64_t i = redo[static_cast<std::size_t>(t)];
            std::copy(td.begin() + t * k, td.begin() + (t + 1) * k, dp + i * k);
            std::copy(ti.begin() + t * k, ti.begin() + (t + 1) * k, ip + i * k);
        }
    } else {
        run_blocks_nogil(m, n_threads, kBlockRows, 1, [&](std::int64_t b, std::int64_t e) {
            for (std::int64_t t = b; t < e; ++t) exact_self_row(xp, n, d, redo[static_cast<std::size_t>(t)], k, dp, ip);
        });
    }
}

// A tile engine built without the GIL, its candidates screened and re-ranked: the lists
// (dist, idx) and the rows its proof left to redo. The engine is returned for its kernel name.
template <class Engine>
struct TileLists {
    std::unique_ptr<Engine> search;
    FloatArray dist;
    IndexArray idx;
    std::vector<std::int64_t> redo;
};

template <class Engine>
TileLists<Engine> tile_lists(const float* xp, std::int64_t n, std::int64_t d, int k, int n_candidates,
                             std::int64_t block, int n_threads) {
    TileLists<Engine> out;
    {
        py::gil_scoped_release nogil;
        out.search = std::make_unique<Engine>(xp, n, d, n_candidates, block, n_threads);
    }
    std::tie(out.dist, out.idx) = alloc_lists(n, k);
    out.redo = screen_and_refine(*out.search, n, k, out.dist.mutable_data(), out.idx.mutable_data(),
                                 n_threads);
    return out;
}

// The float32 tile engine: (dist, idx, rows redone, kernel name).
py::tuple fp32_self_knn(const FloatArray& data, int k, int n_candidates, std::int64_t block, int n_threads,
                        const std::string& prefix) {
    const std::int64_t n = data.shape(0), d = data.shape(1);
    const float* xp = data.data();
    auto t = tile_lists<BruteSelfKnn>(xp, n, d, k, n_candidates, block, n_threads);
    redo_rows(xp, n, d, k, t.redo, t.dist.mutable_data(), t.idx.mutable_data(), n_threads);
    return py::make_tuple(t.dist, t.idx, static_cast<std::int64_t>(t.redo.size()),
                          prefix + t.search->kernel());
}

py::tuple brute_self_knn(const FloatArray& data, int k, int n_candidates, std::int64_t block, int n_threads) {
    check_self_knn_args(data, k, n_candidates);
    py::tuple r = fp32_self_knn(data, k, n_candidates, block, n_threads, "");
    return py::make_tuple(r[0], r[1], r[2]);
}

// Unproven int8 rows above this share of the points (and above kTreeRedoRows): the data
// defeat 8 bits (huge dynamic range, many ties), and the float32 tiles redo everything,
// cheaper than an exact scan per row.
constexpr std::int64_t kInt8GiveUpShare = 32;

py::tuple screen_self_knn(const FloatArray& data, int k, int n_candidates, std::int64_t block, int n_threads) {
    check_self_knn_args(data, k, n_candidates);
    if (block < 1) throw std::invalid_argument("block must be >= 1");
    const std::int64_t n = data.shape(0), d = data.shape(1);
    if (!Int8SelfKnn::available(d)) return fp32_self_knn(data, k, n_candidates, block, n_threads, "");
    const float* xp = data.data();
    auto t = tile_lists<Int8SelfKnn>(xp, n, d, k, n_candidates, block, n_threads);
    const std::int64_t m = static_cast<std::int64_t>(t.redo.size());
    if (m > kTreeRedoRows && m * kInt8GiveUpShare > n) {
        t.search.reset();
        return fp32_self_knn(data, k, n_candidates, block, n_threads, "int8-vnni>");
    }
    t.search.reset();
    redo_rows(xp, n, d, k, t.redo, t.dist.mutable_data(), t.idx.mutable_data(), n_threads);
    return py::make_tuple(t.dist, t.idx, m, std::string("int8-vnni"));
}

py::array_t<double> residual_norms(const FloatArray& data, const py::array_t<double, py::array::c_style>& mean,
                                   double scale, int n_threads) {
    if (data.ndim() != 2) throw std::invalid_argument("data must be a 2-D float32 array (n, d)");
    const std::int64_t n = data.shape(0), d = data.shape(1);
    if (mean.ndim() != 1 || mean.shape(0) != d)
        throw std::invalid_argument("mean must be a 1-D float64 array of the data's " + std::to_string(d) +
                                    " features");
    std::vector<double> out;
    {
        py::gil_scoped_release nogil;
        out = quantisation_residuals(data.data(), n, d, mean.data(), scale, n_threads);
    }
    py::array_t<double> res(static_cast<py::ssize_t>(n));
    std::copy(out.begin(), out.end(), res.mutable_data());
    return res;
}

}  // namespace

void register_neighbors(py::module_& m) {
    py::class_<KDTree>(m, "KDTree", R"doc(
Exact Euclidean k-NN index over a block of points (kd-tree with bounding boxes).

Parameters
----------
data : ndarray of float32, shape (n, d), C-contiguous
    The points; copied into the tree.
leaf_size : int
    Points per leaf.
index_offset : int
    Global index of row 0, so results index the whole dataset when the tree holds one block.
rotated : ndarray of float32, shape (n, d), C-contiguous, optional
    The points in another orthonormal frame (e.g. their principal axes): the boxes and the
    scans use it, and every point that may enter a list is measured in the original frame,
    so the lists are the same. Given with `errors`.
errors : ndarray of float32, shape (n,), optional
    Per row, a bound on the distance between its rotated row and the exact rotation of its
    row (finite, >= 0).
frame : int
    A name of the frame: only trees of the same frame (and both rotated or not) query each
    other.
n_threads : int
    Threads that build it (<= 0: all hardware threads); the tree does not depend on it.
)doc")
        .def(py::init(&make_tree), py::arg("data").noconvert(), py::arg("leaf_size") = 32,
             py::arg("index_offset") = 0, py::arg("rotated").noconvert() = py::none(),
             py::arg("errors").noconvert() = py::none(), py::arg("frame") = 0, py::arg("n_threads") = 1)
        .def_property_readonly("rotated", &KDTree::rotated)
        .def_property_readonly("frame", &KDTree::frame)
        .def_property_readonly("size", &KDTree::size)
        .def_property_readonly("dim", &KDTree::dim)
        .def_property_readonly("index_offset", &KDTree::index_offset)
        .def("query", &tree_query, py::arg("queries").noconvert(), py::arg("k"),
             py::arg("exclude").noconvert() = py::none(), py::arg("n_threads") = 0,
             py::arg("bounds").noconvert() = py::none(), py::arg("rotated_queries").noconvert() = py::none(),
             py::arg("query_errors").noconvert() = py::none(), R"doc(
k nearest tree points of each query.

Parameters
----------
queries : ndarray of float32, shape (m, d), C-contiguous
k : int
    Number of neighbours, >= 1.
exclude : ndarray of int64, shape (m,), optional
    A global index per query never to return (the query's own index in a self-query), or -1.
n_threads : int
    Threads; <= 0 means all hardware threads.
bounds : ndarray of float32, shape (m,), optional
    A squared distance per query (not NaN; +inf for none): only tree points at squared
    distance <= bound are returned, and nodes farther than it are not searched. Seeded with
    the k-th distance of a partial list from other blocks, the result merged with that list
    (merge_topk) is the list over both.
rotated_queries : ndarray of float32, shape (m, d), optional
    A rotated tree's queries in its frame (required there, refused otherwise).
query_errors : ndarray of float32, shape (m,), optional
    Their errors, as the tree's `errors`.

Returns
-------
sqdist : ndarray of float32, shape (m, k)
    Squared Euclidean distances, ascending; +inf where fewer than k points exist (or lie
    within the bound).
indices : ndarray of int64, shape (m, k)
    Global indices, -1 where missing; ties by ascending index.
)doc")
        .def("query_cost", &tree_query_cost, py::arg("queries").noconvert(), py::arg("k"),
             py::arg("exclude").noconvert() = py::none(), py::arg("bounds").noconvert() = py::none(),
             py::arg("rotated_queries").noconvert() = py::none(), py::arg("query_errors").noconvert() = py::none(),
             R"doc(
Cost of query(queries, k, exclude, bounds=bounds, ...): the number of points it scans.

Returns
-------
int
    Tree points scanned, summed over the m queries (one thread).
)doc")
        .def("query_tree", &tree_query_tree, py::arg("qtree"), py::arg("k"),
             py::arg("exclude").noconvert() = py::none(), py::arg("bounds").noconvert() = py::none(),
             py::arg("n_threads") = 0, R"doc(
k nearest tree points of every point of another tree's data, batch by batch.

Queries close together (a batch of the query tree) share one walk of this tree, as in
self_query; faster than query() on the same points.

Parameters
----------
qtree : KDTree
    A tree over the query points (same number of features).
k : int
exclude : ndarray of int64, shape (qtree.size,), optional
    Per query (row of qtree's data): a global index of this tree never to return, or -1.
bounds : ndarray of float32, shape (qtree.size,), optional
    Per query: only points at squared distance <= bound are returned (+inf: no bound).
n_threads : int

Returns
-------
(sqdist float32 (m, k), indices int64 (m, k)), rows in the order of qtree's data, padded
with (+inf, -1).
)doc")
        .def("self_query", &tree_self_query, py::arg("k"), py::arg("n_threads") = 0, R"doc(
k nearest neighbours of every tree point among the others (itself excluded).

Returns (sqdist float32 (n, k), indices int64 (n, k)) with rows in the order of the data given.
)doc")
        .def("probe", &tree_probe, py::arg("positions").noconvert(), py::arg("k"), R"doc(
Cost of self-querying some tree points: the number of distances the search computes.

Parameters
----------
positions : ndarray of int64, shape (m,)
    Tree positions in [0, size) (any m points; a tree position is not a data row).
k : int

Returns
-------
int
    Points scanned, summed over the m searches. Divided by m * size it is the share of the
    data one query touches: small on data of low intrinsic dimension, near 1 on uniform
    high-dimensional data, where brute force is faster.
)doc");

    m.def("brute_self_knn", &brute_self_knn, py::arg("data").noconvert(), py::arg("k"), py::arg("n_candidates"),
          py::arg("block"), py::arg("n_threads") = 0, R"doc(
Exact k nearest other points of every point by brute force (symmetric tiles, FMA; the
micro-kernel is fp32_tile_kernel()).

Parameters
----------
data : ndarray of float32, shape (n, d), C-contiguous
k : int
    Neighbours, 1 <= k < n.
n_candidates : int
    Candidates kept per point from the approximate distances, k <= n_candidates <= n - 1.
block : int
    Points per block (rounded up to a multiple of 96 with the AVX-512 tile, of 48 otherwise);
    a pair of blocks is one task.
n_threads : int

Returns
-------
sqdist : ndarray of float32, shape (n, k)
    Exact squared distances, ascending.
indices : ndarray of int64, shape (n, k)
    Ties by ascending index.
redone : int
    Points whose candidates could not be verified and which were searched again exactly.
)doc");

    m.def("screen_self_knn", &screen_self_knn, py::arg("data").noconvert(), py::arg("k"), py::arg("n_candidates"),
          py::arg("block"), py::arg("n_threads") = 0, R"doc(
Exact k nearest other points of every point, screened in int8 (AVX-512 VNNI) where it runs.

The same answer as brute_self_knn (bit-identical distances, same indices): candidates come
from exact integer distances of quantised points (lossless for integer features spanning at
most 255, such as pixels), are re-ranked with exact float32 distances and proven complete
with a rigorous quantisation-error bound; unproven points are searched again exactly, and
when too many are unproven (data whose range defeats 8 bits) the float32 tiles redo the
search. Without AVX-512 VNNI (or with DATAGAUGE_SIMD=avx2/scalar) it is brute_self_knn.

Parameters
----------
data : ndarray of float32, shape (n, d), C-contiguous, finite
k : int
    Neighbours, 1 <= k < n.
n_candidates : int
    Candidates kept per point, k <= n_candidates <= n - 1.
block : int
    Points per block (rounded up to a multiple of 64 for int8, 96 or 48 for float32).
n_threads : int

Returns
-------
sqdist : ndarray of float32, shape (n, k)
    Exact squared distances, ascending.
indices : ndarray of int64, shape (n, k)
    Ties by ascending index.
redone : int
    Points searched again exactly after the screening that produced the answer.
kernel : str
    The screening kernel that ran: "int8-vnni", "fp32-avx512", "fp32-avx2", "fp32-scalar", or
    "int8-vnni>fp32-..." when the int8 screening gave way to the float32 tiles.
)doc");

    m.def("quantisation_residuals", &residual_norms, py::arg("data").noconvert(), py::arg("mean").noconvert(),
          py::arg("scale"), py::arg("n_threads") = 0, R"doc(
Per row, the norm of the int8 screening's quantisation residual |x - mean - q / scale| with
q = round((x - mean) scale) clamped to [-127, 127], padded for its rounding: the E the
screening's bound uses for data off a pixel grid (screen_self_knn), computed the same way.

Parameters
----------
data : ndarray of float32, shape (n, d), C-contiguous
mean : ndarray of float64, shape (d,)
scale : float
    Positive and finite (the screening uses 127 / max |x - mean|).
n_threads : int

Returns
-------
ndarray of float64, shape (n,)
)doc");

    m.def("simd_level", [] { return std::string(simd::level_name(simd::level())); }, R"doc(
The instruction set the k-NN kernels use: "avx512" (int8 VNNI screening and float32 AVX-512
tiles), "avx2" (float32 AVX2 + FMA tiles) or "scalar"; the CPU's best, capped by the
environment variable DATAGAUGE_SIMD (auto|avx512|avx2|scalar), read once per process.
)doc");

    m.def("fp32_tile_kernel", [] { return std::string(BruteSelfKnn::kernel_name(BruteSelfKnn::selected_kernel())); },
          R"doc(
The micro-kernel of the float32 tiles (brute_self_knn, and screen_self_knn's fallback):
"fp32-avx512" (12 x 32 tile, AVX-512F), "fp32-avx2" (6 x 16, AVX2 + FMA) or "fp32-scalar",
as simd_level() selects. All give the same screening distances' bound and the same answers.
)doc");

    m.def("merge_topk", &merge_topk, py::arg("dist_a").noconvert(), py::arg("idx_a").noconvert(),
          py::arg("dist_b").noconvert(), py::arg("idx_b").noconvert(), py::arg("k"), R"doc(
Merge two sorted partial k-NN lists (over disjoint blocks) into the k best of their union.

Parameters
----------
dist_a, dist_b : ndarray of float32, shape (m, ka) and (m, kb)
    Sorted ascending; +inf for missing entries.
idx_a, idx_b : ndarray of int64, same shapes
    Indices; -1 for missing entries. An index in both lists at the same distance is kept once.
k : int

Returns
-------
(dist float32 (m, k), indices int64 (m, k)), sorted by (distance, index).
)doc");

    m.def("refine_candidates", &refine, py::arg("data").noconvert(), py::arg("queries").noconvert(),
          py::arg("candidates").noconvert(), py::arg("exclude").noconvert() = py::none(), py::arg("k"),
          py::arg("n_threads") = 0, R"doc(
Exact squared distances of candidate neighbours, re-ranked.

Parameters
----------
data : ndarray of float32, shape (n, d)
queries : ndarray of float32, shape (m, d)
candidates : ndarray of int64, shape (m, c)
    Rows of `data`; entries < 0 are ignored.
exclude : ndarray of int64, shape (m,), optional
    Index to drop per query (the query itself).
k : int
n_threads : int

Returns
-------
(sqdist float32 (m, k), indices int64 (m, k)), sorted by (distance, index), padded with (+inf, -1).
)doc");
}

}  // namespace datagauge::bindings
