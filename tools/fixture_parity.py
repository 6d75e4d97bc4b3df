#!/usr/bin/env python3
"""The parity fixtures (tests/data/hf) through the deltatune CLI on one device: `forward --device D` on
each model's reference inputs against transformers' outputs, and `generate --device D` against
transformers' greedy ids. Pure Python (no torch needed), so it also runs where only the CLI is built.

    fixture_parity.py --cli build-engine/app/deltatune --device cuda --fixtures tests/data/hf --out DIR

Tolerance: the largest absolute difference over the largest absolute reference value, at most 1e-3 on
CUDA (TF32 matmuls, when enabled, keep 10 mantissa bits: about 5e-4 relative per product) and 1e-4 on
CPU (float32 against transformers' float32 agrees to about 1e-6). Greedy ids must be equal.
Exit 0 when every fixture passes, 1 otherwise; a table goes to stdout and DIR/parity.json."""
import argparse, array, json, os, struct, subprocess, sys

DTYPES = {"F32": ("f", 4), "F64": ("d", 8), "I64": ("q", 8), "I32": ("i", 4)}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, t in header.items():
        if name == "__metadata__" or t["dtype"] not in DTYPES:
            continue
        code, size = DTYPES[t["dtype"]]
        a = array.array(code)
        b, e = t["data_offsets"]
        a.frombytes(data[base + b:base + e])
        if sys.byteorder != "little":
            a.byteswap()
        out[name] = (t["shape"], a)
    return out


def relative_error(got, want):
    gs, g = got
    ws, w = want
    if gs != ws:
        return float("inf")
    scale = max(max((abs(x) for x in w), default=0.0), 1e-6)
    return max((abs(a - b) for a, b in zip(g, w)), default=0.0) / scale


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    return p.returncode, (p.stderr or p.stdout).strip().splitlines()[-1:] or [""]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", required=True)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--fixtures", default="tests/data/hf")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    tol = 1e-4 if a.device == "cpu" else 1e-3
    os.makedirs(a.out, exist_ok=True)
    rows, ok = [], True
    for name in sorted(os.listdir(a.fixtures)):
        folder = os.path.join(a.fixtures, name)
        ref_path = os.path.join(folder, "reference.safetensors")
        if not os.path.isfile(os.path.join(folder, "config.json")) or not os.path.isfile(ref_path):
            continue
        out_path = os.path.join(a.out, "forward-%s-%s.safetensors" % (name, a.device.replace(":", "")))
        rc, msg = run([a.cli, "forward", folder, "--input", ref_path, "--output", out_path, "--device", a.device])
        row = {"fixture": name, "check": "forward", "device": a.device}
        if rc != 0:
            row.update(ok=False, detail="exit %d: %s" % (rc, msg[0]))
        else:
            ref, got = read_safetensors(ref_path), read_safetensors(out_path)
            compared = [k for k in ("logits", "last_hidden_state", "encoder_last_hidden_state") if k in ref and k in got]
            err = max(relative_error(got[k], ref[k]) for k in compared) if compared else float("inf")
            row.update(ok=err <= tol, error=err, detail="%s: max error %.1e of the largest value (tolerance %.0e)" % ("+".join(compared), err, tol))
        rows.append(row)
        gen_path = os.path.join(folder, "generate.safetensors")
        if os.path.isfile(gen_path):
            ref = read_safetensors(gen_path)
            want = ref["generated_ids"]
            with open(os.path.join(folder, "config.json")) as f:
                enc_dec = json.load(f).get("is_encoder_decoder", False)
            # decoder-only: the prompt and the new tokens; encoder-decoder: the decoder start and the new tokens
            new = want[0][1] - (1 if enc_dec else ref["input_ids"][0][1])
            out_gen = os.path.join(a.out, "generate-%s-%s.safetensors" % (name, a.device.replace(":", "")))
            rc, msg = run([a.cli, "generate", folder, "--input", gen_path, "--output", out_gen, "--max-new-tokens", str(new), "--device", a.device])
            row = {"fixture": name, "check": "generate", "device": a.device}
            if rc != 0:
                row.update(ok=False, detail="exit %d: %s" % (rc, msg[0]))
            else:
                got = read_safetensors(out_gen)["generated_ids"]
                same = got[0] == want[0] and list(got[1]) == list(want[1])
                row.update(ok=same, detail="%s greedy ids %s transformers'" % (" x ".join(map(str, want[0])), "equal" if same else "differ from"))
            rows.append(row)
    for r in rows:
        ok = ok and r["ok"]
        print("%-4s %-22s %-9s %s" % ("ok" if r["ok"] else "FAIL", r["fixture"], r["check"], r["detail"]))
    with open(os.path.join(a.out, "parity.json"), "w") as f:
        json.dump({"device": a.device, "tolerance": tol, "rows": rows}, f, indent=1, default=str)
    print("parity on %s: %d of %d checks passed" % (a.device, sum(r["ok"] for r in rows), len(rows)))
    return 0 if ok and rows else 1


if __name__ == "__main__":
    sys.exit(main())
