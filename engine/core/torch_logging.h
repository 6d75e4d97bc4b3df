// LibTorch's own log lines (glog or c10 logging: c10d's socket timeouts, for one) would repeat on
// stderr what DeltaTune's one-line errors already say. The CLI keeps only fatal ones, unless
// DELTATUNE_TORCH_LOGS=1.
#pragma once

namespace dt {

void quiet_torch_logging();

}  // namespace dt
