"""`dolma train` on CPU: data order, batch reconstruction, loss falls, 1 vs 2 ranks, bit-exact
resume, in-loop evaluation, and export to transformers.

CPU timing on a shared 2-core machine: torch runs single-threaded here (OpenMP spin-waiting
with 2 threads under load is ~10x slower), and most tests use shards with a compact 1024-id
vocabulary so the LM head does not dominate.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from train_fixtures import EOS, write_shards

from dolma_tools.errors import UserError
from dolma_tools.train.config import TrainConfig
from dolma_tools.train.data import GlobalOrder, ShardInstances, describe_batch, epoch_order, expand_shards
from dolma_tools.train.trainer import Trainer, learning_rate

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", autouse=True)
def single_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def shards(dev_corpus, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("train-shards")
    write_shards(dev_corpus, root / "tokens", 12000, 2, compact_vocab=1024)
    write_shards(dev_corpus, root / "val", 4000, 1, skip_docs=400, compact_vocab=1024)
    make_real_shards(root / "real")  # OLMo's real 50280/50304 vocabulary, written by `dolma tokens`
    return {"tokens": root / "tokens", "val": root / "val", "real": root / "real", "root": root}


def make_real_shards(out: Path) -> None:
    try:
        from dolma_tools.tokenize.config import TokensConfig
        from dolma_tools.tokenize.runner import run_tokens
    except ImportError:  # `dolma tokens` not in this checkout: write them the same way here
        write_shards(Path(__file__).resolve().parents[2] / "demo" / "corpus" / "documents", out, 3000, 1,
                     sources=("web",))
        return
    from dolma_tools.config import build_config

    run_tokens(build_config(TokensConfig, None, ["--documents", str(ROOT / "demo/corpus/documents/web/*.json.gz"),
                                                 "--destination", str(out), "--debug"]))


def tiny_config(shards: dict[str, Path], save: Path, **overrides) -> TrainConfig:
    base = dict(shards=[str(shards["tokens"] / "*.npy")], model="tiny", seq_len=64, global_batch_size=8,
                micro_batch_size=4, lr=1e-2, warmup_steps=3, max_steps=24, save_folder=str(save),
                save_every=12, seed=1234, device="cpu", no_resume=True)
    base.update(overrides)
    return TrainConfig(**base)


def read_metrics(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def one_rank_run(shards) -> Path:
    save = shards["root"] / "run-1rank"
    cfg = tiny_config(shards, save, eval_every=12, eval_shards=[str(shards["val"] / "*.npy")], eval_batches=2)
    Trainer(cfg).fit()
    return save


# ----------------------------------------------------------------------------------------------
# Data


def test_instances_are_fixed_length_slices_and_tails_are_dropped(shards):
    paths = expand_shards([str(shards["tokens"] / "*.npy")])
    inst = ShardInstances(paths, 64)
    raw = [np.memmap(p, dtype=np.uint16, mode="r") for p in paths]
    assert inst.counts == [len(r) // 64 for r in raw]
    assert len(inst) == sum(inst.counts)
    first_of_second = inst.counts[0]
    assert np.array_equal(inst[first_of_second + 2], raw[1][128:192].astype(np.int64))
    assert np.array_equal(inst[inst.counts[0] - 1], raw[0][(inst.counts[0] - 1) * 64: inst.counts[0] * 64])


def test_global_order_is_olmos_pcg64_shuffle_and_spans_epochs():
    expected = np.arange(10, dtype=np.uint32)
    np.random.Generator(np.random.PCG64(17 + 1)).shuffle(expected)
    assert np.array_equal(epoch_order(10, 17, 1), expected)
    order = GlobalOrder(10, 17)
    stream = np.concatenate([order.batch(i * 4, 4) for i in range(5)])  # 20 positions = 2 epochs
    assert np.array_equal(stream[:10], epoch_order(10, 17, 0))
    assert np.array_equal(stream[10:], epoch_order(10, 17, 1))
    # resuming at any position continues the same stream (no repeat, no skip)
    assert np.array_equal(order.positions(7, 6), stream[7:13])


def test_inspect_batch_lists_the_documents_of_each_instance(shards, one_rank_run):
    inst = ShardInstances(expand_shards([str(shards["tokens"] / "*.npy")]), 64)
    rows = describe_batch(inst, seed=1234, global_batch_size=8, step=5, world_size=2)
    order = GlobalOrder(len(inst), 1234)
    assert [r["instance"] for r in rows] == order.batch(4 * 8, 8).tolist()
    assert [r["rank"] for r in rows] == [0, 1] * 4
    eos = json.loads((shards["tokens"] / "tokens.json").read_text())["eos_token_id"]
    for row in rows:
        tokens = inst[row["instance"]]
        start = row["token_range"][0]
        assert sum(d["tokens_in_instance"] for d in row["documents"]) == 64
        for doc in row["documents"][:-1]:  # every document but the last ends with EOS inside
            assert tokens[doc["doc_tokens"][1] - 1 - start] == eos
        assert all(d["src"] in {"books", "news", "web", "speeches", "forums", "reviews"} for d in row["documents"])
    # the CLI reads the run's config.yaml from the save folder
    from click.testing import CliRunner

    from dolma_tools.cli import cli

    result = CliRunner().invoke(cli, ["train", "inspect-batch", "--step", "5", "--save-folder", str(one_rank_run),
                                      "--json"])
    assert result.exit_code == 0, result.output
    printed = [json.loads(line) for line in result.output.splitlines()]
    assert [p["instance"] for p in printed] == [r["instance"] for r in rows]
    assert printed[0]["documents"][0]["id"] == rows[0]["documents"][0]["id"]


# ----------------------------------------------------------------------------------------------
# Training


def test_schedules():
    cfg = TrainConfig(shards=["x"], lr=1.0, warmup_steps=10, max_steps=110, min_lr_ratio=0.1)
    assert learning_rate(5, cfg, 110) == pytest.approx(0.5)
    assert learning_rate(10, cfg, 110) == pytest.approx(1.0)
    assert learning_rate(110, cfg, 110) == pytest.approx(0.1)
    assert learning_rate(60, cfg, 110) == pytest.approx(0.55)
    cfg.scheduler = "linear"
    assert learning_rate(60, cfg, 110) == pytest.approx(0.55)
    cfg.scheduler = "inverse_sqrt"
    assert learning_rate(40, cfg, 110) == pytest.approx(0.5)
    cfg.scheduler = "constant"
    assert learning_rate(100, cfg, 110) == 1.0
    by_tokens = TrainConfig(shards=["x"], max_tokens=10 * 512 * 2048 + 1, global_batch_size=512, seq_len=2048)
    assert by_tokens.total_steps() == 11


def test_loss_falls_and_metrics_are_logged(one_rank_run):
    rows = read_metrics(one_rank_run)
    assert [r["step"] for r in rows] == list(range(1, 25))
    for key in ("loss", "lr", "grad_norm", "tokens_per_second", "mfu", "memory_gb"):
        assert key in rows[0]
    first, last = rows[0]["loss"], np.mean([r["loss"] for r in rows[-5:]])
    assert first > 6.5 and last < first - 2.0, (first, last)
    evals = [r for r in rows if "eval/val/loss" in r]
    assert [r["step"] for r in evals] == [12, 24]
    assert evals[1]["eval/val/loss"] < evals[0]["eval/val/loss"] < first
    assert sorted(p.name for p in one_rank_run.iterdir() if p.name.startswith("step")) == ["step12", "step24"]


def test_resume_matches_the_uninterrupted_run_bit_for_bit(shards, one_rank_run, tmp_path):
    save = tmp_path / "resumed"
    save.mkdir()
    shutil.copytree(one_rank_run / "step12", save / "step12")  # as if the run died after step 12
    cfg = tiny_config(shards, save, eval_every=12, eval_shards=[str(shards["val"] / "*.npy")], eval_batches=2,
                      no_resume=False)
    Trainer(cfg).fit()
    resumed = read_metrics(save)
    full = {r["step"]: r for r in read_metrics(one_rank_run)}
    assert [r["step"] for r in resumed] == list(range(13, 25))
    for r in resumed:
        assert r["loss"] == full[r["step"]]["loss"]
        assert r["grad_norm"] == full[r["step"]]["grad_norm"]
    assert resumed[-1]["eval/val/loss"] == full[24]["eval/val/loss"]


def test_two_ranks_match_one_rank(shards, one_rank_run, tmp_path):
    save = tmp_path / "run-2ranks"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "dolma_tools", "train", "--shards", str(shards["tokens"] / "*.npy"),
           "--model", "tiny", "--seq-len", "64", "--global-batch-size", "8", "--micro-batch-size", "2",
           "--lr", "1e-2", "--warmup-steps", "3", "--max-steps", "3", "--save-folder", str(save),
           "--save-every", "2", "--seed", "1234", "--device", "cpu", "--nproc-per-node", "2"]
    # steps 1-3 are inside the warmup, so the lr matches the 24-step run's
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    two = read_metrics(save)
    one = {r["step"]: r for r in read_metrics(one_rank_run)}
    assert [r["step"] for r in two] == [1, 2, 3]
    assert two[0]["loss"] == pytest.approx(one[1]["loss"], rel=1e-6)
    assert two[0]["grad_norm"] == pytest.approx(one[1]["grad_norm"], rel=1e-5)
    assert (save / "step2" / "train" / "rank1.pt").exists()

    # the batch printer knows the run had two ranks
    from click.testing import CliRunner

    from dolma_tools.cli import cli

    result = CliRunner().invoke(cli, ["train", "inspect-batch", "--step", "1", "--save-folder", str(save), "--json"])
    assert [json.loads(line)["rank"] for line in result.output.splitlines()] == [0, 1] * 4

    # a 2-rank checkpoint resumes on 1 rank (DCP reshards) and continues the same curve
    resumed = tmp_path / "resumed-1rank"
    cfg = tiny_config(shards, resumed, max_steps=3, load_path=str(save / "step2"), save_every=0)
    Trainer(cfg).fit()
    assert read_metrics(resumed)[0]["step"] == 3
    assert read_metrics(resumed)[0]["loss"] == pytest.approx(two[2]["loss"], rel=1e-5)


def test_bad_inputs_are_one_line_errors(shards, tmp_path):
    from dolma_tools.cli import main

    lone = tmp_path / "lone"
    lone.mkdir()
    shutil.copy(shards["tokens"] / "part-0-00000.npy", lone / "part-0-00000.npy")
    for args, message in [
        (["--shards", str(lone / "*.npy"), "--max-steps", "1"], "no tokens.json"),
        (["--shards", str(shards["tokens"] / "*.npy")], "--max-steps or --max-tokens"),
        (["--shards", str(shards["tokens"] / "*.npy"), "--max-steps", "1", "--model", "olmo-3b"], "unknown model"),
        (["--shards", str(shards["tokens"] / "*.npy"), "--max-steps", "1", "--global-batch-size", "6",
          "--micro-batch-size", "4"], "multiple of micro_batch_size"),
    ]:
        with pytest.raises(SystemExit) as exc:
            main(["train", *args, "--save-folder", str(tmp_path / "x"), "--device", "cpu"])
        assert exc.value.code == 2


# ----------------------------------------------------------------------------------------------
# Real vocabulary: bits per byte, downstream tasks, export to transformers


def test_real_vocab_eval_and_export_to_transformers(shards, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from dolma_tools.cli import main
    from dolma_tools.train.export import check_export

    save = tmp_path / "real"
    cfg = TrainConfig(shards=[str(shards["real"] / "*.npy")], model="tiny", seq_len=64, global_batch_size=4,
                      micro_batch_size=4, lr=3e-3, warmup_steps=1, max_steps=2, save_folder=str(save),
                      save_every=0, eval_every=2, eval_shards=[str(shards["real"] / "*.npy")], eval_batches=1,
                      eval_tasks=["arc_easy"], eval_limit=4, device="cpu", no_resume=True, z_loss=1e-4)
    Trainer(cfg).fit()
    last = read_metrics(save)[-1]
    assert 0 < last["z_loss"] < 1e-4 * 200  # multiplier × lse², lse ≈ ln 50304 + a little
    assert 0 < last["eval/val/bpb"] < last["eval/val/loss"]  # bytes per token > 1/ln 2 for English
    assert last["eval/arc_easy/questions"] == 4 and 0 <= last["eval/arc_easy/acc"] <= 1

    out = tmp_path / "hf"
    main(["train", "export", str(save / "step2"), "--to", str(out)])
    files = {p.name for p in out.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json"} <= files
    from safetensors import safe_open

    with safe_open(out / "model.safetensors", "pt") as f:
        assert not [k for k in f.keys() if "norm" in k]
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["OlmoForCausalLM"] and config["vocab_size"] == 50304
    ids = torch.from_numpy(ShardInstances([shards["real"] / "part-0-00000.npy"], 64).batch([0, 1]))
    assert check_export(save / "step2", out, ids) < 1e-4
    tok = AutoTokenizer.from_pretrained(str(out))
    assert tok.eos_token_id == EOS
    hf = AutoModelForCausalLM.from_pretrained(str(out))
    assert type(hf).__name__ == "OlmoForCausalLM"

    # and back: import gives the same weights
    back = tmp_path / "imported"
    main(["train", "import", str(out), "--to", str(back), "--seq-len", "64"])
    from dolma_tools.train.checkpoint import load_full_model_state
    from dolma_tools.train.model import ModelConfig, OLMo

    a, b = OLMo(ModelConfig(**json.loads((back / "config.json").read_text())["model"])), None
    load_full_model_state(back, a)
    b = OLMo(a.cfg)
    load_full_model_state(save / "step2", b)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)


def test_export_tied_and_clipped_model(tmp_path):
    from dolma_tools.train.checkpoint import save_model_only
    from dolma_tools.train.export import check_export, export_checkpoint
    from dolma_tools.train.model import ModelConfig, build_model

    cfg = ModelConfig(d_model=64, n_heads=4, n_layers=2, mlp_hidden_size=384, vocab_size=512,
                      max_sequence_length=32, weight_tying=True, clip_qkv=0.05)
    model = build_model(cfg, seed=3)
    tokens = {"tokenizer": None, "eos_token_id": 511, "pad_token_id": 1}
    save_model_only(tmp_path / "ckpt", model, {"model": cfg.to_dict(), "tokens": tokens})
    export_checkpoint(tmp_path / "ckpt", tmp_path / "hf")
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert config["tie_word_embeddings"] is True and config["clip_qkv"] == 0.05
    ids = torch.randint(0, 512, (2, 32), generator=torch.Generator().manual_seed(0))
    assert check_export(tmp_path / "ckpt", tmp_path / "hf", ids) < 1e-4


def _shard_dir(tmp_path: Path, tokens: np.ndarray, extra: bytes = b"") -> Path:
    (tmp_path / "tokens.json").write_text(json.dumps({"vocab_size": 100, "eos_token_id": 0, "dtype": "uint16"}))
    (tmp_path / "part-0.npy").write_bytes(tokens.astype(np.uint16).tobytes() + extra)
    return tmp_path / "part-0.npy"


def test_a_cut_short_shard_is_named_before_training(tmp_path: Path):
    shard = _shard_dir(tmp_path, np.arange(64), extra=b"\x01")
    with pytest.raises(UserError, match=rf"^{shard}: 129 bytes is not a whole number of uint16 tokens"):
        ShardInstances([shard], 8)


def test_a_token_outside_the_vocabulary_is_named_with_its_shard_and_position(tmp_path: Path):
    tokens = np.arange(64) % 100
    tokens[21] = 65535
    shard = _shard_dir(tmp_path, tokens)
    inst = ShardInstances([shard], 8)
    assert inst[1].tolist() == list(range(8, 16))
    with pytest.raises(UserError, match=rf"^{shard}: token 21 is id 65535, outside the vocabulary of 100 in "):
        inst.batch([0, 2])


def test_out_of_range_training_options_fail_up_front(tmp_path: Path):
    from dolma_tools.config import build_config
    from dolma_tools.errors import ConfigError
    from dolma_tools.train.config import TrainConfig

    with pytest.raises(ConfigError, match=r"^lr: must be at least 0, got -1.0$"):
        build_config(TrainConfig, None, ["--shards", "x", "--lr", "-1"])
    with pytest.raises(ConfigError, match=r"^micro_batch_size: must be at least 1, got 0$"):
        build_config(TrainConfig, None, ["--shards", "x", "--micro-batch-size", "0"])


def test_task_and_eval_set_names_ignore_underscores():
    """olmo_eval's task is `openbook_qa`, our decontamination set `openbookqa`: either spelling works in both."""
    from olmo_eval.tasks import list_tasks

    from dolma_tools.evalsets import _set_name, available_eval_sets
    from dolma_tools.train.evaluate import _task_name

    known = set(list_tasks())
    assert _task_name("openbookqa", known) == _task_name("openbook_qa", known) == "openbook_qa"
    with pytest.raises(UserError, match="unknown eval task 'open_book'"):
        _task_name("open_book", known)
    assert "openbookqa" in available_eval_sets()
    assert _set_name("openbook_qa") == _set_name("openbookqa") == "openbookqa"
    assert _set_name("my_file") == "my_file"
