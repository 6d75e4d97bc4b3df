// `deltatune tokenize TOKENIZER_JSON [--pair] [--no-special]`: one line of text on stdin (tab-separated
// for pairs) -> one JSON array of ids on stdout. `deltatune bench tokenize TOKENIZER_JSON FILE`:
// tokens per second on one thread.
#include "cli.h"

#include "core/error.h"
#include "io/json_util.h"
#include "tokenizers/tokenizer.h"

#include <ATen/Parallel.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <sstream>

namespace dt::cli {

int cmd_tokenize(const Args& a) {
    if (a.positional.size() != 1) throw Error("needs TOKENIZER_JSON", "tokenize", "e.g. deltatune tokenize tokenizer.json < lines.txt");
    const auto tok = tok::Tokenizer::from_file(a.positional[0]);
    const bool pair = a.has("--pair"), special = !a.has("--no-special");
    std::string line;
    std::size_t lineno = 0;
    while (std::getline(std::cin, line)) {
        ++lineno;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        tok::Encoding e;
        try {
            if (pair) {
                const auto tab = line.find('\t');
                if (tab == std::string::npos) throw Error("no tab between the two texts");
                const std::string second = line.substr(tab + 1);
                e = tok.encode(line.substr(0, tab), &second, special);
            } else {
                e = tok.encode(line, nullptr, special);
            }
        } catch (const Error& err) {
            throw Error(err.message(), "stdin:" + std::to_string(lineno), err.hint());
        }
        std::cout << nlohmann::json(e.ids).dump() << "\n";
    }
    return 0;
}

int cmd_bench_tokenize(const Args& a) {
    if (a.positional.size() != 3) throw Error("usage: deltatune bench tokenize TOKENIZER_JSON TEXT_FILE [--runs N]", "bench");
    at::set_num_threads(1);
    const auto tok = tok::Tokenizer::from_file(a.positional[1]);
    std::vector<std::string> lines;
    {
        std::istringstream in(json::read_text_file(a.positional[2], 1ull << 30));
        std::string l;
        while (std::getline(in, l)) lines.push_back(l);
    }
    const int runs = std::max(1, a.int_value("--runs", 5));
    std::vector<double> times;
    double cold = 0;
    std::size_t tokens = 0, bytes = 0;
    for (const auto& l : lines) bytes += l.size();
    for (int r = 0; r < runs + 1; ++r) {
        std::size_t n = 0;
        const auto t0 = std::chrono::steady_clock::now();
        for (const auto& l : lines) n += tok.encode(l, nullptr, true).ids.size();
        const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (r > 0) times.push_back(dt);  // the first run warms caches
        else cold = dt;
        tokens = n;
    }
    std::sort(times.begin(), times.end());
    const double med = times[times.size() / 2];
    std::printf("%zu lines, %.1f MiB, %zu tokens per pass, %d runs, one thread\n", lines.size(), bytes / 1048576.0, tokens, runs);
    std::printf("first (cold cache) pass %.1f ms  %.0f tokens/s\n", cold * 1e3, tokens / cold);
    std::printf("median %.1f ms  %.0f tokens/s  %.1f MiB/s\n", med * 1e3, tokens / med, bytes / 1048576.0 / med);
    return 0;
}

}  // namespace dt::cli
