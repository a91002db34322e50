"""Runs at scale keep their weights: the shipped accelerate configs, the saved-weight check, the transformers floor,
a data build under `accelerate launch` that cannot time out, data loader workers, attention kernels, length groups."""

from __future__ import annotations

import configparser
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
TINY = [
    "--max_seq_length",
    "64",
    "--report_to",
    "none",
    "--disable_tqdm",
    "true",
    "--save_strategy",
    "no",
    "--eval_strategy",
    "no",
    "--dataloader_pin_memory",
    "false",
]


def _launch(config: str, args: list[str], tmp_path: Path, extra_env: dict | None = None) -> subprocess.CompletedProcess:
    """`accelerate launch` of `nsptask pretrain` with a shipped config, on two CPU processes (gloo)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "true", **(extra_env or {})}
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(EXAMPLES / config)]
    command += ["--num_processes", "2", "--num_machines", "1", "--machine_rank", "0", "--mixed_precision", "no"]
    command += ["--main_process_ip", "127.0.0.1", "--main_process_port", str(29500 + os.getpid() % 1000)]
    return subprocess.run(
        [*command, "-m", "nsptask.cli", "pretrain", *args], env=env, capture_output=True, text=True, timeout=900
    )


@pytest.mark.slow
@pytest.mark.parametrize("config", ["accelerate_ddp_8gpu.yaml", "accelerate_multinode.yaml"])
def test_each_data_parallel_config_saves_the_weights_it_trained(config, tmp_path):
    from nsptask.modeling import load_pretraining_model

    out = tmp_path / "model"
    run = _launch(config, ["--max_steps", "4", *TINY, "--output_dir", str(out)], tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    # pretrain compared the saved weights with the trained ones (check_saved_weights) before it returned; they load.
    model = load_pretraining_model(str(out))
    assert type(model).__name__ == "BertForPreTraining" and (out / "model.safetensors").exists()


def test_the_sharded_configs_gather_the_weights_to_save_and_leave_the_loop_to_the_command_line():
    fsdp = yaml.safe_load((EXAMPLES / "accelerate_fsdp.yaml").read_text())["fsdp_config"]
    assert fsdp["fsdp_state_dict_type"] == "FULL_STATE_DICT"  # SHARDED_STATE_DICT writes no Hugging Face weights
    assert (
        fsdp["fsdp_auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP" and "fsdp_transformer_layer_cls_to_wrap" not in fsdp
    )
    deepspeed = yaml.safe_load((EXAMPLES / "accelerate_deepspeed_zero2.yaml").read_text())["deepspeed_config"]
    assert "gradient_accumulation_steps" not in deepspeed and "gradient_clipping" not in deepspeed


@pytest.mark.parametrize("family", ["bert", "roberta", "albert", "deberta-v2", "modernbert", "distilbert"])
def test_every_family_names_the_layers_fsdp_wraps(family, tokenizer):
    """Without a class name in the config, FSDP's transformer wrap policy wraps the model's `_no_split_modules`."""
    from nsptask.modeling import build_model

    model, _ = build_model("mlm+nsp", tokenizer, family=family)
    names = {type(m).__name__ for m in model.modules()}
    assert model._no_split_modules and set(model._no_split_modules) <= names, (family, model._no_split_modules)


def test_a_save_without_weights_or_with_other_weights_is_an_error(tokenizer, tmp_path):
    from safetensors.torch import load_file, save_file

    from nsptask.arguments import DataArguments
    from nsptask.training import NspTrainingArguments, check_saved_weights, pretrain

    args = NspTrainingArguments(output_dir=str(tmp_path), max_steps=2, **_quiet())
    trainer = pretrain(args, DataArguments.from_options(max_seq_length=64), tokenizer=tokenizer).trainer
    check_saved_weights(trainer)  # what was saved is what was trained
    weights = tmp_path / "model.safetensors"
    saved = load_file(str(weights))
    name = next(k for k in saved if k.endswith("attention.self.query.weight"))
    saved[name] = saved[name] + 1
    save_file(saved, str(weights), metadata={"format": "pt"})
    with pytest.raises(ValueError, match=r"not the trained ones .* 1 different"):
        check_saved_weights(trainer)
    weights.unlink()
    with pytest.raises(ValueError, match="FULL_STATE_DICT"):
        check_saved_weights(trainer)


def _quiet(**overrides) -> dict:
    return {
        "report_to": "none",
        "disable_tqdm": True,
        "eval_strategy": "no",
        "save_strategy": "no",
        "overwrite_output_dir": True,
        **overrides,
    }


def test_the_trainer_takes_the_loss_as_normalised_over_the_accumulated_batch(tokenizer, tmp_path):
    """transformers reads `loss_is_scaled_for_ga` from 5.19 on; an older Trainer would divide nsptask's loss (already
    normalised over the whole accumulated batch) by the accumulation steps again. The floor in setup.cfg is 5.19."""
    import transformers
    from packaging.version import Version

    from nsptask.arguments import DataArguments
    from nsptask.training import NspTrainingArguments, pretrain

    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    floor = next(line for line in cfg["options"]["install_requires"].split("\n") if line.startswith("transformers"))
    assert Version(floor.split(">=")[1]) >= Version("5.19") and Version(transformers.__version__) >= Version("5.19")
    args = NspTrainingArguments(
        output_dir=str(tmp_path), max_steps=1, gradient_accumulation_steps=4, dropout=0.0, **_quiet()
    )
    trainer = pretrain(args, DataArguments.from_options(max_seq_length=64), tokenizer=tokenizer).trainer
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(8)])
    trainer._window = [int((batch["labels"] != -100).sum()), len(batch["input_ids"])]
    trainer.model.train()
    expected = trainer.compute_loss(trainer.model, batch).item()
    trainer.create_optimizer()
    stepped = trainer.training_step(trainer.model, batch).item()
    assert stepped == pytest.approx(expected, rel=1e-5)  # not expected / 4


def _losses(trainer) -> list[float]:
    return [round(e["loss"], 6) for e in trainer.state.log_history if "loss" in e]


def test_data_loader_workers_mask_as_the_main_process_does_every_epoch(tokenizer, tmp_path):
    """Masks come from (seed, epoch, index), and the epoch from shared memory: two persistent workers give the losses
    of no workers over two epochs, and the padding share is counted from the batches whichever process made them."""
    from nsptask import build_pretraining_dataset
    from nsptask.training import NspTrainingArguments, pretrain

    # Single sentences: lengths vary, so batches pad.
    data = build_pretraining_dataset(tokenizer=tokenizer, data_format="sentence-pair", max_seq_length=64)
    train = data["train"].select(range(64))
    runs = {}
    for workers in (0, 2):
        args = NspTrainingArguments(
            output_dir=str(tmp_path / f"w{workers}"),
            num_train_epochs=2,
            max_steps=-1,
            per_device_train_batch_size=16,
            logging_steps=1,
            dropout=0.0,
            dataloader_num_workers=workers,
            dataloader_persistent_workers=workers > 0,
            **_quiet(),
        )
        runs[workers] = pretrain(args, train_dataset=train, tokenizer=tokenizer)
    assert len(_losses(runs[0].trainer)) == 8
    assert _losses(runs[0].trainer) == _losses(runs[2].trainer)
    padding = {w: r.metrics["train_padding_fraction"] for w, r in runs.items()}
    assert padding[0] == padding[2] > 0.01


@pytest.mark.parametrize("attention", ["eager", "sdpa"])
def test_the_attention_kernel_is_chosen_by_the_option(attention, tokenizer, tmp_path):
    from nsptask.arguments import DataArguments
    from nsptask.training import NspTrainingArguments, pretrain

    args = NspTrainingArguments(output_dir=str(tmp_path), max_steps=1, attn_implementation=attention, **_quiet())
    model = pretrain(args, DataArguments.from_options(max_seq_length=64), tokenizer=tokenizer).trainer.model
    assert model.config._attn_implementation == attention


def test_length_groups_read_a_length_column_the_model_never_sees(tokenizer, tmp_path):
    from nsptask.arguments import DataArguments
    from nsptask.training import NspTrainingArguments, pretrain

    args = NspTrainingArguments(
        output_dir=str(tmp_path), max_steps=2, train_sampling_strategy="group_by_length", **_quiet()
    )
    trainer = pretrain(args, DataArguments.from_options(max_seq_length=64), tokenizer=tokenizer).trainer
    assert "length" in trainer.train_dataset.column_names
    lengths = trainer.train_dataset["length"][:50]
    assert lengths == [len(ids) for ids in trainer.train_dataset["input_ids"][:50]]
    assert "length" not in trainer.data_collator([trainer.train_dataset[i] for i in range(4)])


@pytest.mark.slow
def test_a_build_under_accelerate_launch_outlasts_the_process_group_timeout(tmp_path):
    """The main process builds (here for longer than --ddp_timeout), the other one waits on the cache, not in a
    collective: the run goes on instead of dying at the timeout (a gloo barrier that waits longer than the process
    group's timeout fails on both ranks)."""
    from nsptask.corpus import iter_documents

    corpus = tmp_path / "corpus.txt"
    with open(corpus, "w") as f:  # about 10 s of build on one of these cores: well past the 3 s timeout below
        for copy in range(16):
            for doc in iter_documents():
                f.write("\n".join(f"{s} ({copy})" for s in doc["sentences"]) + "\n\n")
    args = ["--corpus", str(corpus), "--max_steps", "2", *TINY, "--ddp_timeout", "3"]
    args += ["--data_cache_dir", str(tmp_path / "cache"), "--output_dir", str(tmp_path / "model")]
    run = _launch("accelerate_ddp_8gpu.yaml", args, tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert (tmp_path / "model" / "model.safetensors").exists()
