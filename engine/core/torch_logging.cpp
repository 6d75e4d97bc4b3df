#include "core/torch_logging.h"

#include <c10/macros/Macros.h>
#include <c10/util/Logging.h>

#include <cstdlib>
#include <cstring>

#if defined(C10_USE_GLOG)
#include <glog/logging.h>
#endif

namespace dt {

void quiet_torch_logging() {
    if (const char* v = std::getenv("DELTATUNE_TORCH_LOGS"); v && std::strcmp(v, "1") == 0) return;
#if defined(C10_USE_GLOG)
    FLAGS_minloglevel = google::GLOG_FATAL;
#else
    FLAGS_caffe2_log_level = 3;  // c10's own logging: fatal only
#endif
}

}  // namespace dt
