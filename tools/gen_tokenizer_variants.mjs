#!/usr/bin/env node
// gen_tokenizer_variants.mjs: tokenizer parity fixtures for options the public set does not cover,
// written by the real Hugging Face `tokenizers` library (npm package `tokenizers` 0.23.2).
//
// Each variant starts from a committed fixture's tokenizer.json, changes a few options, and is
// loaded and saved again by the library (Tokenizer.fromString, then save), so the library writes
// the file. cases.jsonl holds the library's encodings of the base fixture's inputs plus a few
// that exercise the option, in the public set's format (offsets in code points).
//
//   cd /tmp && npm install tokenizers@0.23.2
//   TOKENIZERS_MODULE=/tmp/node_modules/tokenizers node tools/gen_tokenizer_variants.mjs tests/data/tokenizers
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const tk = require(process.env.TOKENIZERS_MODULE || 'tokenizers');
const OUT = process.argv[2] || 'tests/data/tokenizers';

const VARIANTS = [
  {
    // GPT-2 / BART style saved with add_prefix_space: a space before the first word.
    name: 'gpt2-bytelevel-prefix',
    base: 'gpt2-bytelevel-bpe',
    edit: (t) => { t.pre_tokenizer.add_prefix_space = true; },
  },
  {
    // ByteLevel without GPT-2's regex split (use_regex false) but with the prefix space, and the
    // post-processor trimming offsets.
    name: 'gpt2-bytelevel-noregex-prefix',
    base: 'gpt2-bytelevel-bpe',
    edit: (t) => { t.pre_tokenizer.add_prefix_space = true; t.pre_tokenizer.use_regex = false; t.post_processor.trim_offsets = true; },
  },
  {
    // RoBERTa saved with add_prefix_space in its pre-tokenizer and post-processor, trim_offsets on.
    name: 'roberta-bytelevel-prefix',
    base: 'roberta-bytelevel-bpe',
    edit: (t) => { t.pre_tokenizer.add_prefix_space = true; t.post_processor.add_prefix_space = true; },
  },
];

const EXTRA = [
  { text: 'hello', pair: null },
  { text: ' hello', pair: null },
  { text: '  two leading spaces', pair: null },
  { text: 'Hello world', pair: 'second part' },
  { text: '\tTabbed start', pair: null },
  { text: 'é first', pair: null },
  { text: 'x', pair: ' y' },
];

async function casesFor(tokPath, inputs) {
  const tok = tk.Tokenizer.fromFile(tokPath);
  const lines = [];
  for (const inp of inputs) {
    for (const add of [true, false]) {
      const enc = await tok.encode(inp.text, inp.pair, { addSpecialTokens: add });
      const ids = enc.getIds();
      lines.push(JSON.stringify({
        text: inp.text, pair: inp.pair, add_special_tokens: add, ids, tokens: enc.getTokens(), type_ids: enc.getTypeIds(),
        offsets: enc.getOffsets().map((o) => [o[0], o[1]]), decoded: await tok.decode(ids, true),
      }));
    }
  }
  return lines.join('\n') + '\n';
}

for (const v of VARIANTS) {
  const baseDir = path.join(OUT, v.base), dir = path.join(OUT, v.name);
  const json = JSON.parse(fs.readFileSync(path.join(baseDir, 'tokenizer.json'), 'utf8'));
  v.edit(json);
  fs.mkdirSync(dir, { recursive: true });
  tk.Tokenizer.fromString(JSON.stringify(json)).save(path.join(dir, 'tokenizer.json'), true);
  const seen = new Set(), inputs = [];
  for (const line of fs.readFileSync(path.join(baseDir, 'cases.jsonl'), 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const c = JSON.parse(line), key = JSON.stringify([c.text, c.pair]);
    if (!seen.has(key)) { seen.add(key); inputs.push({ text: c.text, pair: c.pair }); }
  }
  for (const e of EXTRA) {
    const key = JSON.stringify([e.text, e.pair]);
    if (!seen.has(key)) { seen.add(key); inputs.push(e); }
  }
  fs.writeFileSync(path.join(dir, 'cases.jsonl'), await casesFor(path.join(dir, 'tokenizer.json'), inputs));
  console.error(`${v.name}: ${inputs.length * 2} cases`);
}
