"""Training throughput and model FLOPs utilisation (MFU) of pretraining on a GPU.

BERT-base and ModernBERT-base shapes (nsptask's ``base`` preset, a 30,522-token vocabulary), sequence length 128 and
512, bf16 autocast, ``sdpa`` against ``eager`` attention, the sparse MLM head (vocabulary projection at masked
positions only) against the dense one. Each configuration trains MLM+NSP on random token ids (15% of the positions
masked, as ``PretrainingCollator`` masks) with AdamW, the loss computed as ``NspTrainer`` computes it, for a few
warm-up steps and then timed steps. Reported per configuration: tokens/s, and MFU against the device's published
dense bf16 peak, with model FLOPs per token

    6 * (encoder-layer parameters) + 12 * layers * hidden * length + 6 * hidden * vocabulary * (mask share if sparse)

(the last term counts the vocabulary projection where it is computed: 15% of the positions with the sparse head).
On a machine without a GPU it runs tiny shapes on the CPU and says so: those are not GPU figures.

    python benchmarks/bench_gpu.py                  # writes benchmarks/results_gpu.json on a GPU
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
VOCAB = 30522
MASK_SHARE = 0.15
# Dense bf16 peaks (TFLOP/s), from the vendors' data sheets (SXM parts).
PEAK_BF16 = {"H200": 989.4, "H100": 989.4, "A100": 312.0, "L40S": 362.1, "A10": 125.0, "L4": 121.0}


class _Stub(SimpleNamespace):
    """What ``preset_config`` reads from a tokenizer: its size and special-token ids."""

    def __len__(self):
        return self.vocab


def _model(family: str, preset: str, attention: str, vocab: int, device):
    from nsptask.modeling import model_class_for, preset_config

    config = preset_config(family, preset, _Stub(vocab=vocab, pad_token_id=0, cls_token_id=101, sep_token_id=102))
    config._attn_implementation = attention
    return model_class_for(config, "mlm+nsp")(config).to(device)


def _step(model, sparse, batch, optimizer, autocast):
    from nsptask.modeling import mlm_logits, sentence_logits

    labels, sentence = batch["labels"], batch["sentence_label"]
    inputs = {k: v for k, v in batch.items() if k not in ("labels", "sentence_label")}
    if sparse is not None:
        sparse.select(labels != -100, inputs["attention_mask"])
    with autocast:
        outputs = model(**inputs)
    if sparse is not None:
        sparse.clear()
    selected = labels != -100
    logits = mlm_logits(outputs)
    rows = sparse.take(logits) if sparse is not None and sparse.used else logits[selected]
    loss = F.cross_entropy(rows.float(), labels[selected]) + F.cross_entropy(
        sentence_logits(outputs).float().view(-1, 2), sentence.view(-1)
    )
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss


def _flops_per_token(model, length: int, vocab: int, sparse: bool) -> float:
    config = model.config
    hidden = getattr(config, "hidden_size", None) or config.dim
    layers = getattr(config, "num_hidden_layers", None) or config.n_layers
    body = sum(p.numel() for n, p in model.named_parameters() if ".layer." in n or ".layers." in n)
    decoder = hidden * vocab
    return 6 * body + 12 * layers * hidden * length + 6 * decoder * (MASK_SHARE if sparse else 1.0)


def run(family, preset, length, batch_size, attention, sparse_head, device, steps, warmup, vocab) -> dict:
    from nsptask.modeling import enable_sparse_mlm

    torch.manual_seed(0)
    model = _model(family, preset, attention, vocab, device)
    model.train()
    sparse = enable_sparse_mlm(model) if sparse_head else None
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == "cuda")
    ids = torch.randint(200, vocab, (batch_size, length), device=device)
    labels = torch.full_like(ids, -100)
    chosen = torch.rand(ids.shape, device=device) < MASK_SHARE
    labels[chosen] = ids[chosen]
    batch = {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "labels": labels,
        "sentence_label": torch.randint(0, 2, (batch_size,), device=device),
    }
    if family == "bert":
        batch["token_type_ids"] = torch.zeros_like(ids)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    for _ in range(warmup):
        _step(model, sparse, batch, optimizer, autocast)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        _step(model, sparse, batch, optimizer, autocast)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    tokens_per_second = batch_size * length * steps / seconds
    flops = _flops_per_token(model, length, vocab, sparse_head) * tokens_per_second
    return {
        "family": family,
        "preset": preset,
        "length": length,
        "batch_size": batch_size,
        "attention": attention,
        "mlm_head": "sparse" if sparse_head else "dense",
        "tokens_per_second": round(tokens_per_second),
        "model_tflops_per_second": round(flops / 1e12, 2),
        "peak_memory_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2) if device.type == "cuda" else None,
    }


def main() -> dict:
    gpu = torch.cuda.is_available()
    device = torch.device("cuda" if gpu else "cpu")
    name = torch.cuda.get_device_name(0) if gpu else "cpu"
    peak = next((v for k, v in PEAK_BF16.items() if k in name), None) if gpu else None
    if gpu:
        shapes = [("bert", 128, 256), ("bert", 512, 64), ("modernbert", 128, 256), ("modernbert", 512, 64)]
        preset, steps, warmup, vocab = "base", 20, 5, VOCAB
    else:
        shapes = [("bert", 64, 8), ("modernbert", 64, 8)]
        preset, steps, warmup, vocab = "tiny", 3, 1, 8000
    rows = []
    for family, length, batch_size in shapes:
        for attention in ("sdpa", "eager"):
            for sparse_head in (True, False):
                row = run(family, preset, length, batch_size, attention, sparse_head, device, steps, warmup, vocab)
                row["mfu"] = round(row["model_tflops_per_second"] / peak, 4) if peak else None
                rows.append(row)
                if gpu:
                    torch.cuda.empty_cache()
                    torch.cuda.reset_peak_memory_stats()
    return {
        "device": name if gpu else "cpu (no GPU: tiny shapes, not GPU figures)",
        "peak_bf16_tflops": peak,
        "torch": torch.__version__,
        "runs": rows,
    }


if __name__ == "__main__":
    figures = main()
    print(json.dumps(figures, indent=2))
    if torch.cuda.is_available():
        (HERE / "results_gpu.json").write_text(json.dumps(figures, indent=2) + "\n")
