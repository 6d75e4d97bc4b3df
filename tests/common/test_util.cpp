#include "test_util.h"
#include "test_registry.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <QApplication>
#include <QFile>
#include <QProcess>

#include <random>

namespace dttest {

QString hf(const QString& name) { return dataDir() + "/hf/" + name; }

dt::ForwardInputs referenceInputs(const dt::st::File& ref, bool hidden_states) {
    dt::ForwardInputs in;
    in.input_ids = ref.tensor("input_ids");
    in.attention_mask = ref.tensor("attention_mask");
    if (ref.contains("token_type_ids")) in.token_type_ids = ref.tensor("token_type_ids");
    if (ref.contains("decoder_input_ids")) in.decoder_input_ids = ref.tensor("decoder_input_ids");
    in.output_hidden_states = hidden_states;
    return in;
}

DarkPalette::DarkPalette() : m_old(QApplication::palette()) {
    QPalette dark;
    dark.setColor(QPalette::Window, QColor(35, 35, 35));
    dark.setColor(QPalette::Base, QColor(25, 25, 25));
    dark.setColor(QPalette::Text, QColor(230, 230, 230));
    dark.setColor(QPalette::WindowText, QColor(230, 230, 230));
    QApplication::setPalette(dark);
}

DarkPalette::~DarkPalette() { QApplication::setPalette(m_old); }

CliResult runCli(const QStringList& args) {
    QProcess p;
    p.start(cliPath(), args);
    if (!p.waitForFinished(120000)) return {};
    return {p.exitCode(), QString::fromUtf8(p.readAllStandardOutput()), QString::fromUtf8(p.readAllStandardError())};
}

QByteArray keywordTaskJsonl(std::uint64_t seed, int n) {
    std::mt19937_64 rng(seed);
    QByteArray data;
    for (int i = 0; i < n; ++i) {
        nlohmann::json ids = nlohmann::json::array({2});
        const int len = 6 + static_cast<int>(rng() % 9);
        for (int k = 1; k < len; ++k) ids.push_back(10 + static_cast<int>(rng() % 190));
        const bool yes = rng() % 2;
        if (yes) ids[1 + rng() % (len - 1)] = 7;
        data += QByteArray::fromStdString(nlohmann::json({{"input_ids", ids}, {"label", yes ? "yes" : "no"}}).dump()) + "\n";
    }
    return data;
}

void writeBytes(const QString& path, const QByteArray& bytes) {
    QFile f(path);
    if (!f.open(QIODevice::WriteOnly | QIODevice::Truncate)) qFatal("cannot write %s", qPrintable(path));
    f.write(bytes);
}

QByteArray rawSafetensors(const std::string& header, const QByteArray& data, qint64 declaredSize) {
    QByteArray out;
    quint64 n = declaredSize >= 0 ? static_cast<quint64>(declaredSize) : header.size();
    for (int i = 0; i < 8; ++i) out.append(static_cast<char>((n >> (8 * i)) & 0xff));
    out.append(header.data(), static_cast<qsizetype>(header.size()));
    out.append(data);
    return out;
}

double toleranceRatio(const at::Tensor& got, const at::Tensor& ref, double atol, double rtol) {
    if (got.sizes() != ref.sizes()) return 1e30;
    at::Tensor g = got.to(at::kDouble), r = ref.to(at::kDouble);
    return ((g - r).abs() / (atol + rtol * r.abs())).max().item<double>();
}

}  // namespace dttest
