#include <memory>
#include <string>
#include <vector>

#include "common.hpp"
#include "datagauge/ivf.hpp"

namespace datagauge::bindings {

namespace {

using Int32Array = py::array_t<std::int32_t, py::array::c_style>;

constexpr std::int64_t kTaskBlock = 64;        // search tasks between Ctrl-C checks
constexpr std::int64_t kAssignBlock = 1 << 16;  // rows assigned between Ctrl-C checks

// x (n, d) and mean (d,): 2-D, non-empty, matching.
void require_data(const FloatArray& x, const FloatArray& mean) {
    require_ndim(x, 2, "data");
    if (x.shape(0) < 1 || x.shape(1) < 1) throw std::invalid_argument("data must be non-empty");
    require_ndim(mean, 1, "mean");
    if (mean.shape(0) != x.shape(1))
        throw std::invalid_argument("mean has " + std::to_string(mean.shape(0)) + " entries but data has " +
                                    std::to_string(x.shape(1)) + " features");
}

ivf::Quantiser make_quantiser(const FloatArray& centres, const FloatArray& mean) {
    require_ndim(centres, 2, "centres");
    if (centres.shape(1) != mean.shape(0))
        throw std::invalid_argument("centres have " + std::to_string(centres.shape(1)) + " features but mean has " +
                                    std::to_string(mean.shape(0)));
    return ivf::Quantiser(centres.data(), centres.shape(0), centres.shape(1), mean.data());
}

py::tuple ivf_train(const FloatArray& sample, const FloatArray& centres, const FloatArray& mean, std::int64_t max_iter,
                    int n_threads) {
    require_data(sample, mean);
    if (max_iter < 0) throw std::invalid_argument("max_iter must be >= 0");
    ivf::Quantiser quant = make_quantiser(centres, mean);
    if (quant.n_cells() > sample.shape(0))
        throw std::invalid_argument("k-means needs at least as many sample rows as cells");
    const float* sp = sample.data();
    const std::int64_t m = sample.shape(0);
    std::int64_t it = 0;
    {
        py::gil_scoped_release nogil;
        it = quant.train(sp, m, max_iter, n_threads);
    }
    FloatArray out({quant.n_cells(), static_cast<std::int64_t>(sample.shape(1))});
    std::copy(quant.centres().begin(), quant.centres().end(), out.mutable_data());
    return py::make_tuple(out, it);
}

py::tuple ivf_assign(const FloatArray& x, const FloatArray& centres, const FloatArray& mean, int n_threads) {
    require_data(x, mean);
    const ivf::Quantiser quant = make_quantiser(centres, mean);
    const std::int64_t n = x.shape(0), nc = quant.n_cells();
    IndexArray labels(n);
    FloatArray probe({nc, nc});
    const float* xp = x.data();
    std::int64_t* lp = labels.mutable_data();
    float* pp = probe.mutable_data();
    std::fill(pp, pp + nc * nc, kMissingDistance);
    for (std::int64_t b = 0; b < n; b += kAssignBlock) {
        {
            py::gil_scoped_release nogil;
            quant.assign(xp, b, std::min(n, b + kAssignBlock), n_threads, lp, pp);
        }
        if (PyErr_CheckSignals() != 0) throw py::error_already_set();
    }
    quant.finish_scores(pp);
    return py::make_tuple(labels, probe);
}

// The inverted file from labels: start (n_cells + 1) and members (n), checked.
ivf::Cells check_cells(const IndexArray& start, const IndexArray& members, const IndexArray& labels, std::int64_t n) {
    require_ndim(start, 1, "cell_start");
    require_ndim(members, 1, "members");
    require_ndim(labels, 1, "labels");
    require_rows(members, n, "members", "data");
    require_rows(labels, n, "labels", "data");
    const std::int64_t nc = start.shape(0) - 1;
    if (nc < 1) throw std::invalid_argument("cell_start must hold n_cells + 1 >= 2 offsets");
    const std::int64_t *sp = start.data(), *mp = members.data(), *lp = labels.data();
    if (sp[0] != 0 || sp[nc] != n) throw std::invalid_argument("cell_start must run from 0 to n");
    std::vector<char> seen(static_cast<std::size_t>(n), 0);
    for (std::int64_t c = 0; c < nc; ++c) {
        if (sp[c + 1] < sp[c]) throw std::invalid_argument("cell_start must be non-decreasing");
        for (std::int64_t t = sp[c]; t < sp[c + 1]; ++t) {
            const std::int64_t i = mp[t];
            if (i < 0 || i >= n || seen[static_cast<std::size_t>(i)] || lp[i] != c)
                throw std::invalid_argument("members must list every point once, grouped by its label (cell)");
            seen[static_cast<std::size_t>(i)] = 1;
        }
    }
    return {sp, mp, nc};
}

py::tuple ivf_search(const FloatArray& x, const FloatArray& mean, const IndexArray& labels, const IndexArray& cell_start,
                     const IndexArray& members, const Int32Array& probe, std::int64_t nprobe, const IndexArray& queries,
                     int k, int n_candidates, int n_threads) {
    require_data(x, mean);
    require_k(k);
    const std::int64_t n = x.shape(0), d = x.shape(1);
    if (k >= n) throw std::invalid_argument("k must be < the number of points, got k=" + std::to_string(k));
    if (n_candidates < k || n_candidates > n - 1)
        throw std::invalid_argument("n_candidates must lie in [k, n - 1], got " + std::to_string(n_candidates));
    const ivf::Cells cells = check_cells(cell_start, members, labels, n);
    require_ndim(probe, 2, "probe");
    require_rows(probe, cells.n_cells, "probe", "cell_start (less one)");
    const std::int64_t width = probe.shape(1);
    if (nprobe < 1 || nprobe > width)
        throw std::invalid_argument("nprobe must lie in [1, " + std::to_string(width) + "], got " +
                                    std::to_string(nprobe));
    const std::int32_t* pp = probe.data();
    for (std::int64_t t = 0; t < cells.n_cells * width; ++t)
        if (pp[t] < 0 || pp[t] >= cells.n_cells) throw std::invalid_argument("probe cell ids must lie in [0, n_cells)");
    require_ndim(queries, 1, "queries");
    const std::int64_t m = queries.shape(0);
    const std::int64_t* qp = queries.data();
    for (std::int64_t t = 0; t < m; ++t)
        if (qp[t] < 0 || qp[t] >= n) throw std::invalid_argument("queries must be row indices in [0, n)");
    FloatArray dist({m, static_cast<std::int64_t>(k)});
    IndexArray idx({m, static_cast<std::int64_t>(k)});
    float* dp = dist.mutable_data();
    std::int64_t* ip = idx.mutable_data();
    const ivf::Searcher searcher(x.data(), n, d, mean.data(), cells, pp, width, nprobe, n_candidates);
    std::vector<std::int64_t> order;
    const std::vector<ivf::Task> tasks = searcher.plan(qp, m, labels.data(), order);
    run_blocks_nogil(static_cast<std::int64_t>(tasks.size()), n_threads, kTaskBlock, 1,
                     [&](std::int64_t b, std::int64_t e) {
                         for (std::int64_t t = b; t < e; ++t)
                             searcher.run(tasks[static_cast<std::size_t>(t)], qp, order, k, dp, ip);
                     });
    return py::make_tuple(dist, idx);
}

py::tuple ivf_exact_rows(const FloatArray& x, const FloatArray& centres, const IndexArray& labels,
                         const IndexArray& cell_start, const IndexArray& members, const IndexArray& queries,
                         const FloatArray& bounds, int k, int n_threads) {
    require_ndim(x, 2, "data");
    require_k(k);
    const std::int64_t n = x.shape(0), d = x.shape(1);
    const ivf::Cells cells = check_cells(cell_start, members, labels, n);
    require_ndim(centres, 2, "centres");
    require_rows(centres, cells.n_cells, "centres", "cell_start (less one)");
    if (centres.shape(1) != d) throw std::invalid_argument("centres and data must have the same number of features");
    require_ndim(queries, 1, "queries");
    const std::int64_t m = queries.shape(0);
    require_ndim(bounds, 1, "bounds");
    require_rows(bounds, m, "bounds", "queries");
    const std::int64_t* qp = queries.data();
    const float* bp = bounds.data();
    for (std::int64_t t = 0; t < m; ++t) {
        if (qp[t] < 0 || qp[t] >= n) throw std::invalid_argument("queries must be row indices in [0, n)");
        if (!(bp[t] >= 0.0f)) throw std::invalid_argument("bounds must be >= 0 (+inf: no bound), not NaN");
    }
    FloatArray dist({m, static_cast<std::int64_t>(k)});
    IndexArray idx({m, static_cast<std::int64_t>(k)});
    float* dp = dist.mutable_data();
    std::int64_t* ip = idx.mutable_data();
    const float *xp = x.data(), *cp = centres.data();
    std::unique_ptr<ivf::ExactRows> rows;
    {
        py::gil_scoped_release nogil;
        rows = std::make_unique<ivf::ExactRows>(xp, n, d, cp, cells);
    }
    run_blocks_nogil(m, n_threads, 4096, 4, [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t t = b; t < e; ++t) rows->query(qp[t], bp[t], k, dp + t * k, ip + t * k);
    });
    return py::make_tuple(dist, idx);
}

}  // namespace

void register_ivf(py::module_& m) {
    m.def("ivf_train", &ivf_train, py::arg("sample").noconvert(), py::arg("centres").noconvert(),
          py::arg("mean").noconvert(), py::arg("max_iter"), py::arg("n_threads") = 0, R"doc(
Lloyd iterations of the inverted file's coarse quantiser (float32 tile distances).

Parameters
----------
sample : ndarray of float32, shape (m, d)
centres : ndarray of float32, shape (n_cells, d)
    Starting centres (n_cells <= m).
mean : ndarray of float32, shape (d,)
    Centring of the tile arithmetic (the data's column means).
max_iter : int
n_threads : int
    0 for every hardware thread; the result does not depend on it.

Returns
-------
centres : ndarray of float32, shape (n_cells, d)
    Each the mean of the sample rows nearest to it (a centre without rows stays).
n_iter : int
    Iterations run (fewer than max_iter once no row changes cell).
)doc");
    m.def("ivf_assign", &ivf_assign, py::arg("data").noconvert(), py::arg("centres").noconvert(),
          py::arg("mean").noconvert(), py::arg("n_threads") = 0, R"doc(
Home cells of the rows and the probe scores of the cells.

Returns
-------
labels : ndarray of int64, shape (n,)
    Nearest centre of each row (lowest index on ties).
scores : ndarray of float32, shape (n_cells, n_cells)
    scores[c, j]: the smallest squared distance from a row of cell c to centre j; -inf on the
    diagonal, +inf in the rows of empty cells. Sorting a row gives the cell's probe order.
)doc");
    m.def("ivf_search", &ivf_search, py::arg("data").noconvert(), py::arg("mean").noconvert(),
          py::arg("labels").noconvert(), py::arg("cell_start").noconvert(), py::arg("members").noconvert(),
          py::arg("probe").noconvert(), py::arg("nprobe"), py::arg("queries").noconvert(), py::arg("k"),
          py::arg("n_candidates"), py::arg("n_threads") = 0, R"doc(
Approximate k nearest other rows of the query rows, by the cell-blocked inverted file.

Each query is compared, in float32 tile products, with every point of the first `nprobe`
cells of its home cell's probe list; its `n_candidates` nearest by tile distance are re-ranked
with exact distances.

Parameters
----------
data : ndarray of float32, shape (n, d)
mean : ndarray of float32, shape (d,)
labels : ndarray of int64, shape (n,)
    Home cell of each row.
cell_start, members : ndarray of int64, shapes (n_cells + 1,) and (n,)
    Cell c holds rows members[cell_start[c]:cell_start[c + 1]].
probe : ndarray of int32, shape (n_cells, width)
    Cells to search for the queries of each home cell, in order.
nprobe : int
    How many of them, in [1, width].
queries : ndarray of int64, shape (m,)
k, n_candidates : int
    1 <= k <= n_candidates <= n - 1.
n_threads : int
    0 for every hardware thread; the result does not depend on it.

Returns
-------
distances : ndarray of float32, shape (m, k)
    Exact squared distances, ascending; (+inf, -1) where fewer than k candidates were met.
indices : ndarray of int64, shape (m, k)
)doc");
    m.def("ivf_exact_rows", &ivf_exact_rows, py::arg("data").noconvert(), py::arg("centres").noconvert(),
          py::arg("labels").noconvert(), py::arg("cell_start").noconvert(), py::arg("members").noconvert(),
          py::arg("queries").noconvert(), py::arg("bounds").noconvert(), py::arg("k"), py::arg("n_threads") = 0,
          R"doc(
Exact k nearest other rows of the query rows, cells pruned by the triangle inequality.

Parameters
----------
data : ndarray of float32, shape (n, d)
centres : ndarray of float32, shape (n_cells, d)
labels, cell_start, members : ndarray of int64
    The inverted file, as for ivf_search.
queries : ndarray of int64, shape (m,)
bounds : ndarray of float32, shape (m,)
    An upper bound on each query's squared k-th distance (e.g. from an approximate search);
    +inf for none. Below the true value the answer may miss neighbours.
k : int
n_threads : int

Returns
-------
distances : ndarray of float32, shape (m, k)
    Exact squared distances (the exact engines' float32 arithmetic), ascending.
indices : ndarray of int64, shape (m, k)
)doc");
    m.def("ivf_kernel", [] { return std::string(ivf::kernel_name()); }, R"doc(
The tile kernel of the inverted file here: "fp32-avx512", "fp32-avx2" or "fp32-scalar".
)doc");
}

}  // namespace datagauge::bindings
