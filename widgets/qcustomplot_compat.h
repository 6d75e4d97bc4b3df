// The one way to include QCustomPlot: Debian's qcustomplot.h uses the `signals`, `slots`, `emit` and
// `foreach` keywords, which the project turns off (QT_NO_KEYWORDS, for LibTorch's sake).
#pragma once

#define signals Q_SIGNALS
#define slots Q_SLOTS
#define emit Q_EMIT
#define foreach Q_FOREACH
#include <qcustomplot.h>
#undef signals
#undef slots
#undef emit
#undef foreach
