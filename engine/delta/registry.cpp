// The method table: names, the study's family, one-line summaries, parameter formulas, fields.
#include "core/error.h"
#include "delta/methods.h"
#include "delta/util.h"

#include <climits>
#include <sstream>

namespace dt {

namespace {

using J = nlohmann::json;
constexpr double kNoRange = 1;  // as min, with max 0: no range check
const double kMaxInt = 1e9;

OptionDecl opt(std::string name, std::string kind, J def, double min, double max, std::string help, std::string peft = "",
               bool in_form = false, std::vector<std::string> choices = {}) {
    return {std::move(name), std::move(kind), std::move(def), min, max, std::move(choices), std::move(help), std::move(peft), in_form};
}
OptionDecl seed_option() { return opt("seed", "int", 0, 0, kMaxInt, "Seed of the method's random initialisation"); }

// PEFT's module selection fields, shared by the methods that take target modules.
std::vector<OptionDecl> with_select(std::vector<OptionDecl> v) {
    v.push_back(opt("target_modules", "json", nullptr, kNoRange, 0,
                    "Modules to adapt: names (whole or dot-boundary suffix), a full-match regex, or all-linear; default: the architecture's roles",
                    "target_modules"));
    v.push_back(opt("exclude_modules", "json", nullptr, kNoRange, 0, "Modules never adapted (names or a regex)", "exclude_modules"));
    v.push_back(opt("layers_to_transform", "json", nullptr, kNoRange, 0, "Only these block indices (an integer or a list)",
                    "layers_to_transform"));
    v.push_back(opt("layers_pattern", "json", nullptr, kNoRange, 0, "Name of the block list when layers_to_transform is set",
                    "layers_pattern"));
    return v;
}

std::vector<OptionDecl> lora_options() {
    return with_select({
        opt("r", "int", 8, 1, 4096, "Rank of the update B·A: parameters grow linearly with it", "r", true),
        opt("lora_alpha", "number", 8, 0, 65536, "Scale of the update is alpha / r (alpha / sqrt(r) with rsLoRA); PEFT's default 8 whatever r is",
            "lora_alpha", true),
        opt("lora_dropout", "number", 0.0, 0, 0.999, "Dropout on the LoRA branch's input during training", "lora_dropout", true),
        opt("use_rslora", "bool", false, kNoRange, 0, "Rank-stabilised scaling alpha / sqrt(r)", "use_rslora", true),
        opt("use_dora", "bool", false, kNoRange, 0, "DoRA: also learn a magnitude per output feature", "use_dora", true),
        opt("init_lora_weights", "choice", "kaiming", kNoRange, 0,
            "kaiming/gaussian: random A, zero B (model unchanged); pissa: A, B from W's top singular vectors, olora: from W's QR, "
            "the rest kept in the base",
            "init_lora_weights", false, {"kaiming", "gaussian", "pissa", "olora"}),
        opt("pissa_niter", "int", 0, 0, 1000, "PiSSA: 0 for the exact SVD, K for a randomized SVD with K subspace iterations (PEFT's pissa_niter_K)"),
        opt("loraplus_lr_ratio", "number", 1.0, 0.001, 1e6, "LoRA+: B learns at this multiple of the learning rate (1: plain LoRA; the paper suggests 16)",
            "", true),
        opt("bias", "choice", "none", kNoRange, 0, "Which biases train too: none, all, or those of the adapted layers", "bias", false,
            {"none", "all", "lora_only"}),
        opt("rank_pattern", "json", J::object(), kNoRange, 0, "Rank per module pattern, overriding r", "rank_pattern"),
        opt("alpha_pattern", "json", J::object(), kNoRange, 0, "Alpha per module pattern, overriding lora_alpha", "alpha_pattern"),
        seed_option(),
    });
}

std::vector<OptionDecl> adapter_options() {
    return {
        opt("size", "int", nullptr, 1, 65536, "Bottleneck width m (2·m·d + d + m parameters per site); default: hidden size / reduction_factor",
            "", true),
        opt("reduction_factor", "int", 16, 1, 4096, "Bottleneck width as hidden size / reduction_factor, when size is not given", "", true),
        opt("placement", "choice", "houlsby", kNoRange, 0, "Houlsby: after attention and FFN; Pfeiffer: after FFN; parallel: beside the FFN",
            "", true, {"houlsby", "pfeiffer", "parallel"}),
        opt("activation", "choice", "relu", kNoRange, 0, "Non-linearity between the down and up projections", "", false,
            {"relu", "gelu", "gelu_new", "gelu_pytorch_tanh", "gelu_fast", "silu", "swish", "tanh"}),
        opt("scaling", "number", 1.0, kNoRange, 0, "Factor on the adapter's output", ""),
        opt("layers_to_transform", "json", nullptr, kNoRange, 0, "Only these block indices (an integer or a list)"),
        seed_option(),
    };
}

std::vector<OptionDecl> lycoris_options(bool lokr) {
    std::vector<OptionDecl> v = {
        opt("r", "int", 8, 1, 4096, lokr ? "Rank of the factorized Kronecker factors (used where a factor is large)" : "Rank of each of the two products", "r",
            true),
        opt("alpha", "number", 8, 0, 65536, lokr ? "Kept for PEFT's config: peft 0.7.1 applies no alpha / r to LoKr" : "Scale of the update is alpha / r",
            "alpha", true),
        opt("rank_dropout", "number", 0.0, 0, 0.999, "Training: each output row of the update dropped with this probability", "rank_dropout"),
        opt("module_dropout", "number", 0.0, 0, 0.999, "Training: the whole update skipped with this probability", "module_dropout"),
        opt("rank_pattern", "json", J::object(), kNoRange, 0, "Rank per module pattern, overriding r", "rank_pattern"),
        opt("alpha_pattern", "json", J::object(), kNoRange, 0, "Alpha per module pattern, overriding alpha", "alpha_pattern"),
    };
    if (lokr) {
        v.push_back(opt("decompose_both", "bool", false, kNoRange, 0, "Also factorize the left Kronecker factor when r is small", "decompose_both", true));
        v.push_back(opt("decompose_factor", "int", -1, -1, 65536, "Split each dimension with this factor; -1: the divisor pair nearest the square root",
                        "decompose_factor"));
    }
    v.push_back(seed_option());
    return with_select(v);
}

std::vector<OptionDecl> prompt_learning_common(const std::string& what) {
    return {opt("num_virtual_tokens", "int", 20, 1, 512, what, "num_virtual_tokens", true)};
}

}  // namespace

const std::vector<std::string> kBiasGroups = {"query", "key", "value", "attention_output", "intermediate", "output", "layernorm", "other"};

const std::vector<MethodInfo>& method_table() {
    static const std::vector<MethodInfo> table = [] {
        std::vector<MethodInfo> t;
        t.push_back({"lora", "reparameterization", "Low-rank update B·A beside each targeted projection",
                     "r·(d_in + d_out) per target (+ d_out with DoRA)", lora_options(), make_lora});
        t.push_back({"adapter", "addition", "Bottleneck adapters (down, activation, up) at block sites", "2·m·d + d + m per site",
                     adapter_options(), make_adapter});
        t.push_back({"bitfit", "specification", "Train only bias terms (all, or chosen groups)", "the chosen biases",
                     {opt("groups", "choices", nullptr, kNoRange, 0, "Which biases train (default: all)", "", true, kBiasGroups)}, make_bitfit});
        auto prefix = prompt_learning_common("Prefix length P per layer (keys and values)");
        prefix.push_back(opt("prefix_projection", "bool", false, kNoRange, 0, "Reparameterise the prefixes with an MLP while training",
                             "prefix_projection", true));
        prefix.push_back(opt("encoder_hidden_size", "int", nullptr, 1, kMaxInt, "Width of the projection MLP; default: the hidden size",
                             "encoder_hidden_size"));
        prefix.push_back(opt("init_std", "number", 1.0, 0, 1e6, "Standard deviation of the prefixes' random initialisation"));
        prefix.push_back(seed_option());
        t.push_back({"prefix", "addition", "Trainable key/value prefixes in every attention layer",
                     "P·2·L·H·D (+ P·d + d·k + k + k·2·L·H·D + 2·L·H·D with the projection MLP)", prefix, make_prefix});
        auto prompt = prompt_learning_common("Number of soft prompt vectors before the input");
        prompt.push_back(opt("prompt_tuning_init", "choice", "random", kNoRange, 0,
                             "random vectors, copies of random vocabulary embeddings, or the embeddings of init_token_ids",
                             "prompt_tuning_init", false, {"random", "vocab", "ids"}));
        prompt.push_back(opt("init_token_ids", "json", nullptr, kNoRange, 0, "Token ids whose embeddings start the prompt (with 'ids')"));
        prompt.push_back(opt("init_std", "number", 1.0, 0, 1e6, "Standard deviation of a random initialisation"));
        prompt.push_back(seed_option());
        t.push_back({"prompt", "addition", "Soft prompt vectors prepended to the input embeddings", "P·d", prompt, make_prompt});
        t.push_back({"ia3", "reparameterization", "Learned rescaling of keys, values and the FFN input",
                     "d_out per target (d_in for feed-forward targets)",
                     with_select({opt("feedforward_modules", "json", nullptr, kNoRange, 0,
                                      "Targets whose input (not output) is rescaled; default: the architecture's ffn_down role",
                                      "feedforward_modules")}),
                     make_ia3});
        t.push_back({"layernorm", "specification", "Train only normalisation weights and biases", "the norms' parameters", {}, make_layernorm});
        t.push_back({"last_layers", "specification", "Train the last N blocks fully", "all parameters of the last N blocks",
                     {opt("num_layers", "int", 1, 1, 1024, "How many of the last blocks train fully", "", true)}, make_last_layers});
        t.push_back({"selective", "specification", "Train chosen modules fully, or K random ones from a seed", "the chosen modules' parameters",
                     with_select({opt("k", "int", nullptr, 1, 65536, "Train K modules drawn at random (from the ticked ones, if any); off: all ticked",
                                      "", true),
                                  seed_option()}),
                     make_selective});
        auto ptuning = prompt_learning_common("Number of virtual tokens the encoder produces");
        ptuning.push_back(opt("encoder_reparameterization_type", "choice", "MLP", kNoRange, 0,
                              "The prompt encoder: a 3-layer MLP, or a bidirectional LSTM then a 2-layer MLP", "encoder_reparameterization_type", true,
                              {"MLP", "LSTM"}));
        ptuning.push_back(opt("encoder_hidden_size", "int", nullptr, 1, kMaxInt, "Hidden width of the prompt encoder; default: the hidden size",
                              "encoder_hidden_size", true));
        ptuning.push_back(opt("encoder_num_layers", "int", 2, 1, 16, "LSTM layers (the MLP always has two hidden layers, as in PEFT)", "encoder_num_layers"));
        ptuning.push_back(opt("encoder_dropout", "number", 0.0, 0, 0.999, "Dropout between LSTM layers", "encoder_dropout"));
        ptuning.push_back(opt("init_std", "number", 1.0, 0, 1e6, "Standard deviation of the encoder's input table"));
        ptuning.push_back(opt("folded", "bool", false, kNoRange, 0, "The encoder is already folded into a plain table (an imported adapter)"));
        ptuning.push_back(seed_option());
        t.push_back({"ptuning", "addition", "P-tuning: virtual tokens produced by a trained prompt encoder (MLP or LSTM), folded into a table after training",
                     "P·d (+ the encoder while training: MLP d·h + h + h·h + h + h·d + d)", ptuning, make_ptuning});
        t.push_back({"adalora", "reparameterization", "AdaLoRA: SVD-form low-rank updates whose ranks are pruned by importance while training",
                     "init_r·(d_in + d_out + 1) per target while training; the kept ranks after",
                     with_select({
                         opt("init_r", "int", 12, 1, 4096, "Rank every target starts with", "init_r", true),
                         opt("target_r", "int", 8, 0, 4096, "Average rank per target the budget falls to", "target_r", true),
                         opt("lora_alpha", "number", 8, 0, 65536, "Scale is lora_alpha / (init_r + 1e-5), whatever rank a module keeps", "lora_alpha", true),
                         opt("lora_dropout", "number", 0.0, 0, 0.999, "Dropout on the update's input during training", "lora_dropout"),
                         opt("tinit", "int", 0, 0, kMaxInt, "Warm-up steps before pruning starts", "tinit", true),
                         opt("tfinal", "int", 0, 0, kMaxInt, "Final steps trained with the final ranks fixed", "tfinal", true),
                         opt("deltaT", "int", 1, 1, kMaxInt, "Prune every deltaT steps", "deltaT"),
                         opt("beta1", "number", 0.85, 0.0001, 0.9999, "EMA factor of the importance (sensitivity)", "beta1"),
                         opt("beta2", "number", 0.85, 0.0001, 0.9999, "EMA factor of the importance's uncertainty", "beta2"),
                         opt("orth_reg_weight", "number", 0.5, 0, 1e6, "Weight of the orthogonality penalty on A and B", "orth_reg_weight"),
                         opt("total_step", "int", nullptr, 1, kMaxInt, "Steps of the budget schedule; default: the run's max_steps", "total_step"),
                         opt("rank_pattern", "json", nullptr, kNoRange, 0, "Kept triplets per module (PEFT's rank_pattern, from an imported adapter)",
                             "rank_pattern"),
                         seed_option(),
                     }),
                     make_adalora});
        t.push_back({"loha", "reparameterization", "LoHa: the Hadamard product of two low-rank updates", "2·r·(d_in + d_out) per target",
                     lycoris_options(false), make_loha});
        t.push_back({"lokr", "reparameterization", "LoKr: a Kronecker product of two small factors, optionally low-rank",
                     "a·b + c·d per target (low-rank factors: r·(c + d))", lycoris_options(true), make_lokr});
        t.push_back({"oft", "reparameterization", "OFT: a block-diagonal orthogonal rotation (Cayley) of each target's output features",
                     "r·b² per target, b = ceil(d_out / r) (b² with block_share)",
                     with_select({
                         opt("r", "int", 8, 1, 65536, "Number of diagonal blocks (not a rank)", "r", true),
                         opt("coft", "bool", false, kNoRange, 0, "Constrained OFT: keep each block within eps of the identity", "coft", true),
                         opt("eps", "number", 6e-5, 0, 1e6, "COFT's radius (scaled by the block size squared)", "eps"),
                         opt("block_share", "bool", false, kNoRange, 0, "One block shared by all diagonal positions", "block_share", true),
                         opt("module_dropout", "number", 0.0, 0, 0.999, "Training: the rotation skipped with this probability", "module_dropout"),
                     }),
                     make_oft});
        t.push_back({"vera", "reparameterization", "VeRA: shared frozen random matrices, scaled by two trainable vectors per target",
                     "r + d_out per target (shared frozen: r·(max d_in + max d_out))",
                     with_select({
                         opt("r", "int", 256, 1, 65536, "Rank of the shared random projections", "r", true),
                         opt("d_initial", "number", 0.1, -1000, 1000, "Initial value of the vector d", "d_initial", true),
                         opt("vera_dropout", "number", 0.0, 0, 0.999, "Dropout on the update's input during training", "vera_dropout"),
                         opt("projection_prng_key", "int", 0, 0, kMaxInt, "Seed of the shared random projections", "projection_prng_key"),
                     }),
                     make_vera});
        t.push_back({"full", "baseline", "Full fine-tuning of every parameter", "all parameters", {}, make_full});
        return t;
    }();
    return table;
}

nlohmann::json OptionDecl::to_json() const {
    J j = {{"name", name}, {"kind", kind}, {"default", default_value}, {"help", help}, {"in_form", in_form}};
    if (min <= max) j["range"] = {min, max};
    if (!choices.empty()) j["choices"] = choices;
    j["peft"] = peft.empty() ? J(nullptr) : J(peft);
    return j;
}

const OptionDecl& MethodInfo::option(const std::string& field) const {
    for (const auto& o : options)
        if (o.name == field) return o;
    throw Error("method '" + name + "' has no option '" + field + "'", "method table");
}

bool MethodInfo::has_option(const std::string& field) const {
    for (const auto& o : options)
        if (o.name == field) return true;
    return false;
}

std::vector<std::string> MethodInfo::fields() const {
    std::vector<std::string> v;
    for (const auto& o : options) v.push_back(o.name);
    return v;
}

nlohmann::json MethodInfo::to_json() const {
    J opts = J::array();
    for (const auto& o : options) opts.push_back(o.to_json());
    return {{"name", name}, {"family", family}, {"summary", summary}, {"trains", formula}, {"options", opts}};
}

const MethodInfo& find_method(const std::string& name, const std::string& where) {
    for (const auto& m : method_table())
        if (m.name == name) return m;
    std::string list;
    for (const auto& m : method_table()) list += (list.empty() ? "" : ", ") + m.name;
    throw Error("unknown method '" + name + "'", where, "methods: " + list);
}

std::vector<std::string> default_targets(const std::string& method, const RoleTable& roles, bool feedforward) {
    // PEFT's defaults as roles; the architecture's table names the modules (a fused attn_qkv, as
    // GPT-2 has, stands in for q, k and v).
    if (method == "lora" || method == "adalora" || method == "loha" || method == "lokr" || method == "oft" || method == "vera")
        return roles.targets({Role::AttnQ, Role::AttnV});
    if (method == "ia3")
        return roles.targets(feedforward ? std::vector<Role>{Role::FfnDown} : std::vector<Role>{Role::AttnK, Role::AttnV, Role::FfnDown});
    return {};
}

std::vector<std::string> method_fields(const std::string& method) { return find_method(method, "").fields(); }

namespace {

std::string num_str(double x) {
    std::ostringstream s;
    s << x;
    return s.str();
}

// One option's value, checked against its declaration; null when absent and without a default.
nlohmann::json resolve_option(const OptionDecl& o, const nlohmann::json& spec, const std::string& where) {
    const bool given = spec.contains(o.name) && !spec[o.name].is_null();
    if (!given) return o.default_value;
    const nlohmann::json& v = spec[o.name];
    if (o.kind == "int") {
        const auto n = delta::int_field(spec, o.name, 0, where, o.min <= o.max ? static_cast<std::int64_t>(o.min) : INT64_MIN);
        if (o.min <= o.max && static_cast<double>(n) > o.max)
            throw Error("field '" + o.name + "' must be at most " + std::to_string(static_cast<std::int64_t>(o.max)) + ", got " +
                            std::to_string(n), where);
        return n;
    }
    if (o.kind == "number") {
        const double x = delta::number_field(spec, o.name, 0, where);
        if (o.min <= o.max && (x < o.min || x > o.max))
            throw Error("field '" + o.name + "' must be in [" + num_str(o.min) + ", " + num_str(o.max) + "], got " + v.dump(), where);
        return x;
    }
    if (o.kind == "bool") return delta::bool_field(spec, o.name, false, where);
    if (o.kind == "choice") return delta::string_field(spec, o.name, "", where, o.choices);
    if (o.kind == "choices") {
        std::string list;
        for (const auto& c : o.choices) list += (list.empty() ? "" : ", ") + c;
        if (!v.is_array() || v.empty()) throw Error("field '" + o.name + "' must be a non-empty list", where, "choose from: " + list);
        for (const auto& e : v)
            if (!e.is_string() || std::find(o.choices.begin(), o.choices.end(), e.get<std::string>()) == o.choices.end())
                throw Error("unknown " + o.name + " entry " + e.dump(), where + ": " + o.name, o.name + ": " + list);
        return v;
    }
    return v;  // json: the method checks the structure
}

}  // namespace

nlohmann::json resolve_options(const std::string& method, const nlohmann::json& spec, const std::string& where) {
    const MethodInfo& info = find_method(method, where);
    delta::check_fields(spec, info.fields(), where);
    nlohmann::json out = nlohmann::json::object();
    for (const auto& o : info.options) {
        nlohmann::json v = resolve_option(o, spec, where);
        if (!v.is_null()) out[o.name] = std::move(v);
    }
    return out;
}

}  // namespace dt
