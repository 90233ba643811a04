#include <memory>
#include <optional>

#include "common.hpp"
#include "datagauge/mst.hpp"

namespace datagauge::bindings {

namespace {

constexpr std::int64_t kSearchBlock = 1 << 14;  // unproven points between Ctrl-C checks
constexpr std::int64_t kSearchChunk = 64;        // points a thread takes at a time

py::tuple euclidean_mst(const FloatArray& data, const IndexArray& neighbors, int leaf_size, int n_threads,
                        const std::optional<FloatArray>& sqdist, const KDTree* tree) {
    require_ndim(data, 2, "data");
    require_ndim(neighbors, 2, "neighbors");
    require_rows(neighbors, data.shape(0), "neighbors", "data");
    const std::int64_t n = data.shape(0), d = data.shape(1), k = neighbors.shape(1);
    if (d < 1) throw std::invalid_argument("data must have at least one feature");
    if (n < 2) throw std::invalid_argument("a spanning tree needs at least 2 points, got " + std::to_string(n));
    if (k < 1 || k >= n)
        throw std::invalid_argument("neighbors must have 1 to n - 1 columns, got " + std::to_string(k));
    if (leaf_size < 1) throw std::invalid_argument("leaf_size must be >= 1, got " + std::to_string(leaf_size));
    const float* sp_ = nullptr;
    if (sqdist) {
        require_ndim(*sqdist, 2, "sqdist");
        require_rows(*sqdist, data.shape(0), "sqdist", "data");
        if (sqdist->shape(1) != k)
            throw std::invalid_argument("sqdist must have as many columns as neighbors (" + std::to_string(k) +
                                        "), got " + std::to_string(sqdist->shape(1)));
        sp_ = sqdist->data();
    }
    const float* xp = data.data();
    const std::int64_t* np_ = neighbors.data();
    std::unique_ptr<BoruvkaMst> mst;
    {
        py::gil_scoped_release nogil;
        mst = std::make_unique<BoruvkaMst>(xp, n, d, np_, k, leaf_size, n_threads, sp_, tree);
    }
    while (mst->components() > 1) {
        {
            py::gil_scoped_release nogil;
            mst->start_round(n_threads);
        }
        run_blocks_nogil(mst->n_unproven(), n_threads, kSearchBlock, kSearchChunk,
                         [&](std::int64_t b, std::int64_t e) { mst->search(b, e); });
        {
            py::gil_scoped_release nogil;
            mst->finish_round();
        }
        if (PyErr_CheckSignals() != 0) throw py::error_already_set();
    }
    const std::vector<EdgeKey> edges = mst->edges();
    const auto m = static_cast<py::ssize_t>(edges.size());
    IndexArray src(m), dst(m);
    FloatArray sq(m);
    std::int64_t *sp = src.mutable_data(), *dp = dst.mutable_data();
    float* wp = sq.mutable_data();
    for (py::ssize_t i = 0; i < m; ++i) {
        sp[i] = edges[static_cast<std::size_t>(i)].a;
        dp[i] = edges[static_cast<std::size_t>(i)].b;
        wp[i] = edges[static_cast<std::size_t>(i)].w;
    }
    py::dict stats;
    stats["rounds"] = mst->rounds();
    stats["searched"] = mst->searched();
    stats["proved"] = mst->proved();
    return py::make_tuple(src, dst, sq, stats);
}

}  // namespace

void register_mst(py::module_& m) {
    m.def("euclidean_mst", &euclidean_mst, py::arg("data").noconvert(), py::arg("neighbors").noconvert(),
          py::arg("leaf_size") = 16, py::arg("n_threads") = 0, py::arg("sqdist").noconvert() = py::none(),
          py::arg("tree") = py::none(), R"doc(
Exact Euclidean minimum spanning tree (Boruvka) from exact k-NN lists.

Each round gives every component its cheapest outgoing edge: from a point's list when the list
reaches outside the component (its first outside neighbour is exact), proved absent when the
list's k-th squared distance exceeds the length of an edge known to leave the component, and
otherwise from an exact search for the nearest point outside the component: in `tree` when one
is given, else in kd-trees with boxes and balls built here (one per large component, one over
the small ones).

Parameters
----------
data : ndarray of float32, shape (n, d), C-contiguous
    The points, n >= 2.
neighbors : ndarray of int64, shape (n, k), C-contiguous
    The k nearest other points of every point (1 <= k < n), sorted by (squared distance,
    index) in the core's exact arithmetic, as every exact engine returns them. Lists that are
    not sorted lists of other points raise ValueError; incomplete lists (an approximate search)
    are not detected and give a wrong tree.
leaf_size : int
    Points per kd-tree leaf.
n_threads : int
    Threads; <= 0 means all hardware threads.
sqdist : ndarray of float32, shape (n, k), C-contiguous, optional
    The lists' squared distances as the exact search returned them (the core's arithmetic,
    bit for bit): used instead of measuring them again. Negative, NaN or infinite entries, or
    lists not sorted by them, raise ValueError; other wrong values give a wrong tree.
tree : KDTree, optional
    A kd-tree over exactly these points (index offset 0, plain or rotated), such as the one
    the lists came from: the searches run in it (no trees are built). A tree of other points
    raises ValueError.

Returns
-------
source, target : ndarray of int64, shape (n - 1,)
    Edge endpoints, source < target.
sqdist : ndarray of float32, shape (n - 1,)
    Squared edge lengths. Edges are sorted by (sqdist, source, target).
stats : dict
    ``rounds`` (Boruvka rounds), ``searched`` (point searches run, over all rounds),
    ``proved`` (points ruled out by their k-th distance, over all rounds).
)doc");
}

}  // namespace datagauge::bindings
