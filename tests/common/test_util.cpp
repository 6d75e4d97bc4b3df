#include "test_util.h"

#include <ATen/ATen.h>

#include <QFile>

namespace dttest {

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
