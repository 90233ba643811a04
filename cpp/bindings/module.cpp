#include "common.hpp"

PYBIND11_MODULE(_core, m) {
    m.doc() = "datagauge compiled core: k-NN search, top-k merging, coverage selection, Gaussian mixtures and subgroup (bias) search.";
    datagauge::bindings::register_neighbors(m);
    datagauge::bindings::register_coverage(m);
    datagauge::bindings::register_gmm(m);
    datagauge::bindings::register_bias(m);
    datagauge::bindings::register_mst(m);
    datagauge::bindings::register_ivf(m);
}
