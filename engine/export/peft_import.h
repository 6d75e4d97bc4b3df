// Import of adapter folders saved by Hugging Face PEFT (adapter_config.json +
// adapter_model.safetensors): LoRA (rsLoRA, DoRA, patterns), AdaLoRA, LoHa, LoKr, OFT, VeRA, IA3,
// prefix tuning, prompt tuning and P-tuning,
// with the trained head of SEQ_CLS tasks (modules_to_save). Every tensor's name and shape is checked
// before anything changes, so a delta for another base model fails cleanly.
#pragma once

#include "delta/delta_set.h"

#include <string>

namespace dt {

class TransformerModel;

// The delta spec a PEFT adapter_config.json describes (for inspection and re-export).
DeltaSpec spec_from_peft_config(const std::string& config_path);

// Attaches the adapter in `dir` to `model` and loads its tensors. Throws dt::Error naming the file
// and tensor (and leaves the model as it was) on any mismatch.
DeltaSet import_peft(TransformerModel& model, const std::string& dir);

bool is_peft_folder(const std::string& dir);

// PEFT's peft_type for a method ("adalora" -> "ADALORA") and back; empty when PEFT has none.
std::string method_peft_type(const std::string& method);
std::string peft_type_method(const std::string& peft_type);

}  // namespace dt
