#!/usr/bin/env python3
"""The peer of `deltatune bench train` on a GPU: transformers + PEFT, eager PyTorch, the same workload
(random weights and tokens, LoRA r=8 / alpha 16 / dropout 0.1, AdamW), medians of the steps after two
warm-ups, peak allocated device memory. Needs torch, transformers and peft (the device machine has them).

    gpu_peer_bench.py --model bert-base-seqcls|llama-1b-shape --batch 32 --seq 128 --dtype bf16 --steps 20
Prints one JSON line: {"peer": ..., "median_ms": ..., "tokens_per_s": ..., "peak_mib": ...}."""
import argparse, json, statistics, time
import torch
from peft import LoraConfig, get_peft_model

ap = argparse.ArgumentParser()
ap.add_argument("--model", default="bert-base-seqcls")
ap.add_argument("--batch", type=int, default=32)
ap.add_argument("--seq", type=int, default=128)
ap.add_argument("--dtype", default="bf16")
ap.add_argument("--steps", type=int, default=20)
ap.add_argument("--device", default="cuda")
a = ap.parse_args()
torch.manual_seed(0)
dev = torch.device(a.device)
if a.model == "bert-base-seqcls":
    from transformers import BertConfig, BertForSequenceClassification
    cfg = BertConfig(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072, num_labels=2)
    model = BertForSequenceClassification(cfg)
    lora = LoraConfig(task_type="SEQ_CLS", r=8, lora_alpha=16, lora_dropout=0.1, target_modules=["query", "value"])
    vocab = 30522
elif a.model == "llama-1b-shape":
    from transformers import LlamaConfig, LlamaForCausalLM
    cfg = LlamaConfig(vocab_size=32000, hidden_size=2048, num_hidden_layers=22, num_attention_heads=32, num_key_value_heads=4,
                      intermediate_size=5632, max_position_embeddings=2048, rms_norm_eps=1e-5, tie_word_embeddings=False)
    model = LlamaForCausalLM(cfg)
    lora = LoraConfig(task_type="CAUSAL_LM", r=8, lora_alpha=16, lora_dropout=0.1, target_modules="all-linear")
    vocab = 32000
else:
    raise SystemExit("unknown --model " + a.model)
model = get_peft_model(model, lora).to(dev)
model.train()
opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
x = torch.randint(1, vocab, (a.batch, a.seq), device=dev)
y = torch.randint(0, 2, (a.batch,), device=dev) if a.model.startswith("bert") else torch.randint(0, vocab, (a.batch, a.seq), device=dev)
times = []
cuda = dev.type == "cuda"
if cuda:
    torch.cuda.reset_peak_memory_stats(dev)
for i in range(a.steps + 2):
    if cuda:
        torch.cuda.synchronize(dev)
    t0 = time.perf_counter()
    with torch.autocast(dev.type, dtype=torch.bfloat16 if a.dtype == "bf16" else torch.float16, enabled=a.dtype != "fp32"):
        loss = model(input_ids=x, labels=y).loss
    loss.float().backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    if cuda:
        torch.cuda.synchronize(dev)
    if i >= 2:
        times.append(time.perf_counter() - t0)
m = statistics.median(times)
print(json.dumps({"peer": "transformers %s + peft %s, torch %s" % (__import__("transformers").__version__, __import__("peft").__version__, torch.__version__),
                  "model": a.model, "batch": a.batch, "seq": a.seq, "dtype": a.dtype, "median_ms": 1e3 * m,
                  "tokens_per_s": a.batch * a.seq / m, "peak_mib": torch.cuda.max_memory_allocated(dev) / 2**20 if cuda else float("nan")}))
