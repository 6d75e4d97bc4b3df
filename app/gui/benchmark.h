// `deltatune-workbench --benchmark`: the workbench's three interactive timings, measured in one run
// and printed as JSON lines: ticking "all linear" on a BERT-base-sized tree until the budget has
// updated, repainting a loss curve of 1,000,000 points, and the main thread's event latency while a
// run trains in the worker thread.
#pragma once

class MainWindow;

int runWorkbenchBenchmark(MainWindow& w);
