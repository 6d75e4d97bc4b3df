// Intra-op thread setup. Debian's LibTorch starts with one thread; the engine uses the machine's
// cores unless DELTATUNE_THREADS or an explicit request says otherwise. Torch's thread count is
// process-wide for intra-op, but grad mode is thread-local: workers call this on their own thread.
#pragma once

namespace dt {

// requested > 0 wins; otherwise DELTATUNE_THREADS; otherwise hardware concurrency.
// Returns the count set. Throws dt::Error for an unparsable DELTATUNE_THREADS.
int configure_threads(int requested = 0);

}  // namespace dt
