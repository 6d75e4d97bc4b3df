// Text operations of the tokenizer pipeline: a normalized string whose every code point remembers
// the original range it came from, the normalizers and pre-tokenizer splits over it, GPT-2's byte
// table, and the decoding helpers. Internal to engine/tokenizers.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace dt::tok::detail {

struct NChar {
    char32_t c;
    std::int32_t orig;     // first original code point it came from
    std::int32_t end = 0;  // one past the last (0: orig + 1)
    std::int32_t stop() const { return end > 0 ? end : orig + 1; }
};
using NString = std::vector<NChar>;
using NString = std::vector<NChar>;

struct BertNorm {
    bool clean = true, chinese = true, strip = false, lower = true;
    NString apply(const NString& in) const;
};

bool is_chinese(char32_t c);
const std::vector<char32_t>& bytes_to_chars();
const std::unordered_map<char32_t, unsigned char>& chars_to_bytes();
std::vector<NString> bert_split(const NString& s);
std::vector<NString> gpt2_split(const NString& s);
std::vector<NString> llama3_split(const NString& s);
std::vector<NString> whitespace_split(const NString& s);
NString to_byte_chars(const NString& w);
NString replace_all(const NString& s, const std::u32string& from, const std::u32string& to);
NString collapse_runs(const NString& s, char32_t c, std::size_t min_run, const std::u32string& to);
std::string lossy_utf8(const std::string& bytes);
std::string replace_str(std::string s, const std::string& from, const std::string& to);
bool byte_token(const std::string& t, unsigned char& b);

}  // namespace dt::tok::detail
