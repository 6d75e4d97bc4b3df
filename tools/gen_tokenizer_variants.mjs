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
//   TOKENIZERS_MODULE=/tmp/node_modules/tokenizers node tools/gen_tokenizer_variants.mjs tests/data/tokenizers [NAME...]
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
  // The rest of the normalizer / pre-tokenizer / model surface (the audit of issue 21), with the
  // inputs of AUDIT below: accents, digits, punctuation runs, hyphens, controls, compatibility forms.
  {
    name: 'wordpiece-nfd-whitespace-digits',
    base: 'bert-wordpiece-uncased',
    extra: 'audit',
    edit: (t) => {
      t.normalizer = { type: 'Sequence', normalizers: [{ type: 'NFD' }, { type: 'StripAccents' }, { type: 'Lowercase' },
        { type: 'Strip', strip_left: true, strip_right: true }] };
      t.pre_tokenizer = { type: 'Sequence', pretokenizers: [{ type: 'Whitespace' }, { type: 'Digits', individual_digits: true }] };
    },
  },
  {
    name: 'wordpiece-nmt-nfkd-punct',
    base: 'bert-wordpiece-cased',
    extra: 'audit',
    edit: (t) => {
      t.normalizer = { type: 'Sequence', normalizers: [{ type: 'Nmt' }, { type: 'NFKD' }] };
      t.pre_tokenizer = { type: 'Sequence', pretokenizers: [{ type: 'CharDelimiterSplit', delimiter: ' ' },
        { type: 'Punctuation', behavior: 'Contiguous' }, { type: 'Digits', individual_digits: false }] };
    },
  },
  {
    name: 'wordpiece-nfc-split-behaviors',
    base: 'bert-wordpiece-cased',
    extra: 'audit',
    edit: (t) => {
      t.normalizer = { type: 'NFC' };
      t.pre_tokenizer = { type: 'Sequence', pretokenizers: [
        { type: 'Split', pattern: { Regex: '\\s+' }, behavior: 'Removed', invert: false },
        { type: 'Split', pattern: { String: '-' }, behavior: 'MergedWithNext', invert: false },
        { type: 'Split', pattern: { String: ',' }, behavior: 'MergedWithPrevious', invert: false },
        { type: 'Split', pattern: { String: 'th' }, behavior: 'MergedWithNext', invert: false },
        { type: 'Split', pattern: { String: 'o' }, behavior: 'MergedWithPrevious', invert: true },
        { type: 'Split', pattern: { Regex: '\\w+|[^\\w\\s]+' }, behavior: 'Contiguous', invert: false },
        { type: 'Punctuation', behavior: 'Isolated' }] };
    },
  },
  {
    name: 'wordlevel-whitespace',
    base: 'bert-wordpiece-cased',
    extra: 'audit',
    edit: (t) => {
      const vocab = {};
      for (const [tok, id] of Object.entries(t.model.vocab)) if (!tok.startsWith('##')) vocab[tok] = id;
      t.model = { type: 'WordLevel', vocab, unk_token: '[UNK]' };
      t.normalizer = { type: 'Lowercase' };
      t.pre_tokenizer = { type: 'Whitespace' };
      t.decoder = null;
      // Added tokens matched in the normalized text (lower-cased) and in the raw text.
      const next = Math.max(...t.added_tokens.map((a) => a.id), ...Object.values(vocab)) + 1;
      t.added_tokens.push({ id: next, content: 'new york', single_word: false, lstrip: false, rstrip: true, normalized: true, special: false });
      t.added_tokens.push({ id: next + 1, content: 'Ångström', single_word: false, lstrip: true, rstrip: false, normalized: false, special: false });
    },
  },
];

// Inputs for the audit variants, beside the base fixture's.
const AUDIT = [
  { text: 'Room 101, floor 3-4: 2024 items!!! (about 12.5%)', pair: null },
  { text: 'Crème brûlée à la carte, naïve café', pair: 'Ångström über Straße' },
  { text: 'Cụ thể, bạn sẽ tham gia một nhóm', pair: null },
  { text: '\u0e33\u0e19\u0e49\u0e333\u0e25\u0e33 Thai', pair: null },
  { text: 'state-of-the-art, well-known, re-do--twice', pair: null },
  { text: "don't stop... ?!? the other thing", pair: null },
  { text: '\u24b6 circled \u2460\u2461 and \uff21\uff22\uff23\uff11\uff12\uff13 fullwidth, \ufb01ne ligature', pair: null },
  { text: '\ud55c\uad6d\uc5b4 \u65e5\u672c\u8a9e \u0627\u0644\u0639\u0631\u0628\u064a\u0629', pair: null },
  { text: 'a\u0001b\u200bc\ufeffd\u2028e\u000bf\u007fg\u2581h\ufffdi', pair: null },
  { text: '   leading and trailing \t ', pair: null },
  { text: 'snake_case x_y __init__ e\u0301\u0301 o\u0308', pair: null },
  { text: '\u03a9\u2248\u00e7\u221a\u222b \u00bd \u2167 \u00b2\u00b3 \u0663\u0664', pair: null },
  { text: 'the thin thatch', pair: 'mother-in-law, that is' },
  { text: 'I love New York and NEW YORK  , a new yorker in ANGSTRÖM  Ångström', pair: 'new  york' },
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

const ONLY = process.argv.slice(3);  // optional: the variants to write (default: all)
for (const v of VARIANTS) {
  if (ONLY.length && !ONLY.includes(v.name)) continue;
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
  for (const e of (v.extra === 'audit' ? AUDIT : EXTRA)) {
    const key = JSON.stringify([e.text, e.pair]);
    if (!seen.has(key)) { seen.add(key); inputs.push(e); }
  }
  fs.writeFileSync(path.join(dir, 'cases.jsonl'), await casesFor(path.join(dir, 'tokenizer.json'), inputs));
  console.error(`${v.name}: ${inputs.length * 2} cases`);
}
