// Export of LoRA, IA3, prefix and prompt deltas as adapter folders Hugging Face PEFT loads
// (adapter_config.json with PEFT 0.7.1's field names; adapter_model.safetensors with PEFT's saved
// key names). Newer-only fields (use_rslora, use_dora) are written only when in use, so older PEFT
// versions still load plain LoRA exports. The folder is staged beside the destination and renamed.
#pragma once

#include <string>

namespace dt {

class DeltaSet;
class TransformerModel;

// base_model_name_or_path: what PEFT should load the base from (a folder or hub name).
void export_peft(TransformerModel& model, const DeltaSet& deltas, const std::string& out_dir, const std::string& base_model_name);

}  // namespace dt
