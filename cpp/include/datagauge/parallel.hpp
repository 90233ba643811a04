// Minimal thread pool-free parallel loop on std::thread.
//
// parallel_for(n, n_threads, chunk, fn) calls fn(begin, end) over [0, n) in chunks that
// threads take dynamically. The first exception thrown by any worker stops the others from
// taking new chunks and is rethrown on the calling thread after every worker has joined.
// When a thread cannot be started (a memory limit leaves no room for its stack), the work
// runs on the threads that did start and the calling thread: the same answer, more slowly.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

namespace datagauge {

// Number of worker threads for a request: n_threads <= 0 means every hardware thread.
inline int resolve_threads(int n_threads) {
    if (n_threads > 0) return n_threads;
    const unsigned hw = std::thread::hardware_concurrency();
    return hw == 0 ? 1 : static_cast<int>(hw);
}

template <class Fn>
void parallel_for(std::size_t n, int n_threads, std::size_t chunk, Fn&& fn) {
    if (n == 0) return;
    chunk = std::max<std::size_t>(chunk, 1);
    const std::size_t n_chunks = (n + chunk - 1) / chunk;
    const std::size_t workers =
        std::min<std::size_t>(static_cast<std::size_t>(resolve_threads(n_threads)), n_chunks);
    if (workers <= 1) {
        for (std::size_t b = 0; b < n; b += chunk) fn(b, std::min(b + chunk, n));
        return;
    }

    std::atomic<std::size_t> next{0};
    std::atomic<bool> stop{false};
    std::exception_ptr error;
    std::mutex error_mutex;
    auto worker = [&]() {
        while (!stop.load(std::memory_order_relaxed)) {
            const std::size_t b = next.fetch_add(chunk);
            if (b >= n) break;
            try {
                fn(b, std::min(b + chunk, n));
            } catch (...) {
                std::lock_guard<std::mutex> lock(error_mutex);
                if (!error) error = std::current_exception();
                stop.store(true);
            }
        }
    };

    std::vector<std::thread> threads;
    threads.reserve(workers - 1);
    try {
        for (std::size_t t = 0; t + 1 < workers; ++t) threads.emplace_back(worker);
    } catch (const std::system_error&) {
        // Could not start another thread: the chunks are taken dynamically, so the started
        // threads and this one do all the work.
    }
    worker();
    for (auto& th : threads) th.join();
    if (error) std::rethrow_exception(error);
}

}  // namespace datagauge
