// Helpers shared by tests: temporary folders, raw file writing, tensor comparison.
#pragma once

#include "io/safetensors.h"
#include "models/model.h"

#include <ATen/core/Tensor.h>

#include <QByteArray>
#include <QPalette>
#include <QString>
#include <QStringList>

#include <cstdint>
#include <string>

namespace dttest {

// tests/data/hf/<name> in the source tree.
QString hf(const QString& name);
// The inputs stored in a fixture's reference.safetensors (input_ids, attention_mask, token_type_ids,
// decoder_input_ids).
dt::ForwardInputs referenceInputs(const dt::st::File& ref, bool hidden_states = false);

// The `deltatune` CLI run to completion (2 minutes at most): exit code, stdout, stderr.
struct CliResult {
    int code = -1;
    QString out, err;
};
CliResult runCli(const QStringList& args);

// A dark application palette (window 35, base 25, text 230) while it lives, for dark-mode checks;
// the previous palette comes back when it goes.
class DarkPalette {
public:
    DarkPalette();
    ~DarkPalette();
    DarkPalette(const DarkPalette&) = delete;
    DarkPalette& operator=(const DarkPalette&) = delete;

private:
    QPalette m_old;
};

// Writes bytes to a file (test fixtures made on the fly).
void writeBytes(const QString& path, const QByteArray& bytes);
// A pre-tokenized yes/no task as JSONL: n lines of {"input_ids": [2, ...], "label": "yes"|"no"}, where
// "yes" means token 7 occurs; the same lines for the same seed.
QByteArray keywordTaskJsonl(std::uint64_t seed, int n);
// A safetensors file from a raw header string and data (any content, valid or not).
QByteArray rawSafetensors(const std::string& header, const QByteArray& data, qint64 declaredSize = -1);
// max |a - b| / (atol + rtol |b|); <= 1 means within tolerance.
double toleranceRatio(const at::Tensor& got, const at::Tensor& ref, double atol = 1e-5, double rtol = 1e-5);

}  // namespace dttest
