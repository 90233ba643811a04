// Shared helpers for the bindings: strict array types, shape checks, chunked GIL release.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "datagauge/parallel.hpp"

namespace datagauge::bindings {

namespace py = pybind11;

// C-contiguous arrays of exactly this dtype; used with .noconvert() so that a wrong dtype or
// layout is a TypeError instead of a hidden copy.
using FloatArray = py::array_t<float, py::array::c_style>;
using IndexArray = py::array_t<std::int64_t, py::array::c_style>;

inline void require_ndim(const py::array& a, py::ssize_t ndim, const char* name) {
    if (a.ndim() != ndim)
        throw std::invalid_argument(std::string(name) + " must be " + std::to_string(ndim) + "-D, got " +
                                    std::to_string(a.ndim()) + "-D");
}

inline void require_rows(const py::array& a, py::ssize_t rows, const char* name, const char* what) {
    if (a.shape(0) != rows)
        throw std::invalid_argument(std::string(name) + " has " + std::to_string(a.shape(0)) +
                                    " rows but " + what + " has " + std::to_string(rows));
}

inline void require_k(std::int64_t k) {
    if (k < 1) throw std::invalid_argument("k must be >= 1, got " + std::to_string(k));
}

// Run fn(begin, end) over [0, n) on n_threads threads with the GIL released, in blocks of
// `block` rows; between blocks the GIL is taken back to let Ctrl-C interrupt the work.
template <class Fn>
void run_blocks_nogil(std::int64_t n, int n_threads, std::int64_t block, std::int64_t chunk, Fn&& fn) {
    for (std::int64_t b0 = 0; b0 < n; b0 += block) {
        const std::int64_t b1 = std::min(n, b0 + block);
        {
            py::gil_scoped_release nogil;
            parallel_for(static_cast<std::size_t>(b1 - b0), n_threads, static_cast<std::size_t>(chunk),
                         [&](std::size_t s, std::size_t e) {
                             fn(b0 + static_cast<std::int64_t>(s), b0 + static_cast<std::int64_t>(e));
                         });
        }
        if (PyErr_CheckSignals() != 0) throw py::error_already_set();
    }
}

void register_neighbors(py::module_& m);
void register_coverage(py::module_& m);
void register_gmm(py::module_& m);
void register_bias(py::module_& m);
void register_mst(py::module_& m);
void register_ivf(py::module_& m);

}  // namespace datagauge::bindings
