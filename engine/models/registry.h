// The architecture table: HF class names (config.json "architectures") and model types mapped to
// factories. Adding a family adds rows here (or one register_architecture() call) and one file that
// also declares the family's roles (models/roles.h, TransformerModel::roles()); no method changes.
#pragma once

#include "models/model.h"

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace dt {

struct ArchitectureEntry {
    std::string architecture;  // HF class name, e.g. "BertForMaskedLM"
    std::string model_type;    // config "model_type", e.g. "bert"
    std::string task;          // "base", "masked-lm", "sequence-classification", ...
    bool is_base_for_type;     // the class used when only model_type is given
    std::function<std::shared_ptr<TransformerModel>(const ModelConfig&)> make;
};

const std::vector<ArchitectureEntry>& architecture_table();

// Adds a row to the table (an architecture defined outside engine/models, e.g. in a test or a
// plugin). Throws dt::Error if the class name is taken. Not thread-safe: register before loading.
void register_architecture(ArchitectureEntry entry);

// Picks the entry for a config: architectures[0] first, then the base class of model_type.
// Throws dt::Error naming the config file and listing what is supported.
const ArchitectureEntry& find_architecture(const ModelConfig& cfg);

std::string supported_architectures();

}  // namespace dt
