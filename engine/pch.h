// Precompiled header of the engine, reused by the CLI. Keep it to slow, stable third-party headers.
#pragma once
#include <torch/torch.h>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>
#include <map>
#include <memory>
