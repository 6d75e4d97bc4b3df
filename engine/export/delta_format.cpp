#include "export/delta_format.h"

#include "core/error.h"
#include "export/peft_import.h"
#include "io/atomic_file.h"
#include "io/json_util.h"
#include "io/safetensors.h"
#include "models/model.h"

#include <torch/torch.h>

#include <cstdio>
#include <set>
#include <sys/stat.h>

namespace dt {
namespace {

constexpr int kFormatVersion = 1;


}  // namespace

bool is_deltatune_folder(const std::string& dir) {
    struct stat st {};
    return ::stat((dir + "/delta_config.json").c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string frozen_fingerprint(const TransformerModel& model) {
    const auto tied = model.tied_parameters();
    std::vector<std::pair<std::string, at::Tensor>> frozen;
    for (const auto& p : model.named_parameters(true))
        if (!p.value().requires_grad() && !tied.count(p.key())) frozen.emplace_back(p.key(), p.value());
    std::sort(frozen.begin(), frozen.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
    std::uint64_t h = 1469598103934665603ull;
    auto mix = [&](const unsigned char* p, std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
    };
    for (const auto& [name, t] : frozen) {
        mix(reinterpret_cast<const unsigned char*>(name.data()), name.size());
        const at::Tensor c = t.detach().to(at::kCPU).to(at::kFloat).contiguous();
        mix(static_cast<const unsigned char*>(c.data_ptr()), static_cast<std::size_t>(c.numel()) * sizeof(float));
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, "fnv1a64:%016llx", static_cast<unsigned long long>(h));
    return buf;
}

void export_deltatune(TransformerModel& model, const DeltaSet& deltas, const std::string& out_dir, const std::string& base_name) {
    for (const auto& m : deltas.methods())
        if (m->merged()) throw Error("the delta is merged into the base weights", out_dir, "unmerge it before exporting");
    st::NamedTensors tensors;
    std::set<const void*> seen;
    for (const auto& p : model.named_parameters(true))
        if (p.value().requires_grad() && seen.insert(p.value().unsafeGetTensorImpl()).second) tensors.emplace_back(p.key(), p.value().detach());
    // The fingerprint covers what stayed frozen: unfrozen base tensors have moved during training.
    nlohmann::json base = {{"name", base_name}, {"architecture", model.name()}, {"num_layers", model.num_layers()},
                           {"hidden_size", model.hidden_size()}, {"config", model.config().raw}};
    base["frozen_fingerprint"] = frozen_fingerprint(model);
    const nlohmann::json cfg = {{"format", "deltatune-delta"}, {"format_version", kFormatVersion}, {"delta", deltas.spec().to_json()},
                                {"base", base}, {"tensors", tensors.size()}};
    write_folder_atomic(out_dir, [&](const std::string& staging) {
        st::save(staging + "/delta.safetensors", tensors, {{"format", "pt"}, {"deltatune_format_version", std::to_string(kFormatVersion)}});
        write_file_atomic(staging + "/delta_config.json", cfg.dump(2) + "\n");
    });
}

DeltaImport import_deltatune(TransformerModel& model, const std::string& dir, bool allow_other_base) {
    const std::string cfg_path = dir + "/delta_config.json", file = dir + "/delta.safetensors";
    const nlohmann::json cfg = json::load_file(cfg_path);
    if (!cfg.is_object()) throw Error("expected a JSON object", cfg_path);
    if (json::get_string_or(cfg, "format", "", cfg_path) != "deltatune-delta") throw Error("not a DeltaTune delta", cfg_path + ": format");
    const std::int64_t version = json::get_int_or(cfg, "format_version", 0, cfg_path);
    if (version > kFormatVersion)
        throw Error("written by a newer DeltaTune (format " + std::to_string(version) + ")", cfg_path, "update DeltaTune");
    if (!cfg.contains("base") || !cfg["base"].is_object())
        throw Error("missing object field 'base' (the base model the delta was trained on)", cfg_path, "export the delta again");
    if (!cfg.contains("delta")) throw Error("missing field 'delta' (the delta spec)", cfg_path, "export the delta again");
    const auto& base = cfg["base"];
    const std::string base_where = cfg_path + ": base";
    const std::string architecture = json::get_string_or(base, "architecture", "", base_where);
    if (architecture != model.name())
        throw Error("the delta is for " + (architecture.empty() ? std::string("?") : architecture) + ", the model is " + model.name(),
                    cfg_path + ": base.architecture", "load the base model the delta was trained on");
    const std::string base_fingerprint = json::get_string_or(base, "frozen_fingerprint", "", base_where);
    const std::string base_name = json::get_string_or(base, "name", "?", base_where);
    auto f = st::File::open(file);
    DeltaImport out;
    out.deltas = DeltaSet::apply(model, DeltaSpec::from_json(cfg["delta"], cfg_path + ": delta"));
    try {
        auto params = model.named_parameters(true);
        std::vector<std::pair<at::Tensor, std::string>> plan;
        for (const auto& t : f->tensors()) {
            auto* dst = params.find(t.name);
            if (!dst) throw Error("tensor '" + t.name + "' has no place in " + model.name(), file, "maybe the delta was trained on another base model?");
            if (c10::IntArrayRef(t.shape) != dst->sizes())
                throw Error("tensor '" + t.name + "' has shape " + c10::str(c10::IntArrayRef(t.shape)) + " but the model expects " + c10::str(dst->sizes()),
                            file, "maybe the delta was trained on another base model?");
            plan.emplace_back(*dst, t.name);
        }
        // Every tensor the delta trains must be in the file: one left out would silently keep its
        // initial value.
        std::set<std::string> in_file;
        for (const auto& t : f->tensors()) in_file.insert(t.name);
        std::set<const void*> seen;
        for (const auto& p : params)
            if (p.value().requires_grad() && seen.insert(p.value().unsafeGetTensorImpl()).second && !in_file.count(p.key()))
                throw Error("tensor '" + p.key() + "' of the delta is missing", file, "the file is incomplete; export the delta again");
        // Fingerprint of what the delta leaves frozen, before the trained tensors are copied in.
        const std::string fp = frozen_fingerprint(model);
        if (base_fingerprint != fp) {
            out.fingerprint_matches = false;
            out.warning = "the base weights differ from those the delta was trained on (" + base_name + ")";
            if (!allow_other_base) throw Error(out.warning, cfg_path + ": base.frozen_fingerprint", "pass the original base, or allow another base");
        }
        torch::NoGradGuard ng;
        for (auto& [dst, src] : plan) {
            const at::Tensor t = f->tensor(src);
            if (t.is_floating_point() && !torch::isfinite(t).all().item<bool>())
                throw Error("tensor '" + src + "' holds NaN or infinite values", file, "the delta is corrupt; export it again");
            dst.copy_(t);
        }
    } catch (...) {
        out.deltas.remove(model);
        throw;
    }
    return out;
}

bool is_exported_delta(const std::string& dir) { return is_peft_folder(dir) || is_deltatune_folder(dir); }

DeltaImport import_exported_delta(TransformerModel& model, const std::string& dir) {
    if (is_peft_folder(dir)) {
        DeltaImport d;
        d.deltas = import_peft(model, dir);
        return d;
    }
    if (is_deltatune_folder(dir)) return import_deltatune(model, dir);
    throw Error("not an exported delta folder (no adapter_config.json or delta_config.json)", dir,
                "export one with 'deltatune export RUN_DIR --format peft|deltatune --out DIR'");
}

}  // namespace dt
