"""Presets are plain TOML data; every bundled preset builds a valid config, and flags override presets."""
import pytest

from digitrec.config import load_preset, make_config, preset_names
from digitrec.errors import DigitrecError
from digitrec.models import available


def test_paper_preset_is_the_papers_recipe():
    cfg = make_config("paper")
    assert (cfg.model, cfg.optimizer, cfg.lr, cfg.batch_size, cfg.epochs, cfg.split) == \
        ("paper-cnn", "adam", 1e-4, 64, 25, "paper")
    assert cfg.augment and cfg.rotate > 0 and cfg.shear > 0 and cfg.shift > 0 and cfg.label_smoothing == 0


@pytest.mark.parametrize("name", preset_names())
def test_every_bundled_preset_is_valid(name):
    cfg = make_config(name)
    assert cfg.model in available()
    assert set(load_preset(name)) <= set(vars(cfg))


def test_fast_and_best_evaluate_on_the_untouched_official_test_set():
    for name in ("fast", "best"):
        assert make_config(name).split == "canonical"


def test_flags_override_preset_and_none_means_unset():
    cfg = make_config("paper", epochs=3, lr=None)
    assert cfg.epochs == 3 and cfg.lr == 1e-4


def test_unknown_override():
    with pytest.raises(DigitrecError, match="unknown setting"):
        make_config("paper", learning_rate=1)


# --- one typed source: flags, presets and sweep values all come from TrainConfig's fields -----------------------

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import typing  # noqa: E402

from digitrec import config  # noqa: E402
from digitrec.cli import main  # noqa: E402
from digitrec.config import FIELDS, TrainConfig  # noqa: E402


def _train_parser():
    from digitrec.cli import build_parser

    return build_parser()


def test_choices_are_literals():
    for name, options in (("split", ("paper", "canonical")), ("optimizer", ("adam", "adamw", "sgd")),
                          ("schedule", ("constant", "onecycle", "cosine")), ("freeze", ("none", "backbone"))):
        assert typing.get_origin(config.TYPES[name]) is typing.Literal and config.choices(name) == options


def test_every_field_has_a_generated_flag_that_round_trips():
    """Each field's flag, fed a non-default value, lands in the config with its type."""
    values = {"dataset": "emnist-digits", "split": "canonical", "limit": 500, "data_dir": "/d", "model": "fast",
              "epochs": 3, "batch_size": 16, "lr": 0.02, "optimizer": "sgd", "momentum": 0.8, "weight_decay": 1e-4,
              "schedule": "cosine", "warmup": 0.1, "label_smoothing": 0.1, "ema": 0.9, "augment": False,
              "rotate": 5.0, "shear": 4.0, "shift": 0.05, "scale": 0.1, "elastic": 1.0, "stroke": 0.5, "blur": 0.2,
              "contrast": 0.3, "noise": 0.05, "seed": 7, "device": "cuda", "bf16": False, "bf16_cpu": True,
              "channels_last": True, "compile": True, "compile_mode": "max-autotune", "cuda_graphs": True,
              "eval_batch_size": 512, "tta": True, "threads": 1, "init_from": "/r/model.pt",
              "backbone_weights": "imagenet", "freeze": "backbone", "backbone_lr": 1e-3, "unfreeze_epoch": 2}
    assert set(values) == set(FIELDS) - {"model_options"}  # a new field needs a line here
    argv = ["train", "--out", "r", "--model-option", "width=8"]
    for name, value in values.items():
        if isinstance(value, bool):
            argv.append(config.flag(name) if value else "--no-" + config.flag(name)[2:])
        else:
            argv += [config.flag(name), str(value)]
    from digitrec.commands.train import config_from_args

    cfg = config_from_args(_train_parser().parse_args(argv))
    for name, value in values.items():
        assert getattr(cfg, name) == value and type(getattr(cfg, name)) is type(value), name
    assert cfg.model_options == {"width": 8}


def test_given_flags_only_override_the_preset():
    from digitrec.commands.train import config_from_args, given_settings

    args = _train_parser().parse_args(["train", "--preset", "fast", "--out", "r", "--epochs", "3"])
    assert given_settings(args) == ({"epochs": 3}, {})
    cfg = config_from_args(args)
    assert cfg.epochs == 3 and cfg.batch_size == 256 and cfg.model_options == {"width": 16}
    args = _train_parser().parse_args(["train", "--out", "r", "--limit", "none", "--threads", "none"])
    assert given_settings(args)[0] == {"limit": None, "threads": None}


@pytest.mark.parametrize("argv, message", [
    (["--lr", "abc"], "argument --lr: invalid float value: 'abc'"),
    (["--epochs", "2.5"], "argument --epochs: invalid int value: '2.5'"),
    (["--split", "random"], "argument --split: unknown split 'random'; choose one of: paper, canonical"),
    (["--optimizer", "rmsprop"], "unknown optimizer 'rmsprop'; choose one of: adam, adamw, sgd"),
    (["--lr", "inf"], "--lr must be a finite number, got inf"),
    (["--epochs", "1000000000"], "--epochs must be ≥ 1 and ≤ 10000"),
    (["--seed", "-1"], "--seed must be ≥ 0"),
    (["--shear", "90"], "--shear must be ≥ 0 and ≤ 80"),
    (["--threads", "0"], "--threads must be ≥ 1"),
    (["--device", "tpu"], "--device must be auto, cpu or cuda[:N], got 'tpu'"),
    (["--model", "fast", "--model-option", "width=200000"], "would have 9.36e+12 parameters"),
    (["--model", "fast", "--model-option", "width=wide"], "option width must be an integer, got 'wide'"),
    (["--dropout", "1.5"], "--dropout must be in [0, 1)"),
    (["--unfreeze-epoch", "30", "--epochs", "5"], "--unfreeze-epoch must be between 2 and --epochs (5)"),
])
def test_bad_flags_are_one_line(tmp_path, capsys, argv, message):
    assert main(["train", *argv, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("digitrec: error:") and message in err and "\n" not in err, err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("text, message", [
    ('epochs = "3"', "epochs must be an integer, got '3'"),
    ("lr = \"fast\"", "lr must be a number, got 'fast'"),
    ("augment = 1", "augment must be true or false, got 1"),
    ("batch_size = 64.0", "batch_size must be an integer, got 64.0"),
    ('split = "random"', "split: unknown split 'random'"),
    ("model_options = [1, 2]", "model_options must be a table of NAME = VALUE, got [1, 2]"),
    ("lr = nan", "lr must be a finite number, got nan"),
    ("limit = 0", "limit must be a positive number of training samples, got 0"),
    ("epochs = [\n", "not valid TOML"),
    ("learning_rate = 1", "unknown setting(s) learning_rate"),
])
def test_preset_values_are_type_checked(tmp_path, capsys, text, message):
    preset = tmp_path / "p.toml"
    preset.write_text(text + "\n")
    assert main(["train", "--preset", str(preset), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("digitrec: error: preset") and str(preset) in err and message in err, err
    assert "\n" not in err and not (tmp_path / "r").exists()


def test_preset_ints_are_accepted_as_floats(tmp_path):
    (tmp_path / "p.toml").write_text("lr = 1\nmomentum = 0\n")
    cfg = make_config(str(tmp_path / "p.toml"))
    assert cfg.lr == 1.0 and type(cfg.lr) is float and type(cfg.momentum) is float


@pytest.mark.parametrize("name", ["folder", "folder.toml"])
def test_preset_path_that_is_a_folder(tmp_path, capsys, name):
    (tmp_path / name).mkdir()
    assert main(["train", "--preset", str(tmp_path / name), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"digitrec: error: preset {tmp_path / name}: is a folder, not a TOML file"


def test_preset_toml_round_trips_through_tomli_w(tmp_path):
    cfg = make_config("robust", limit=300, threads=2)
    text = config.preset_toml(cfg, skip=("threads",))
    (tmp_path / "p.toml").write_text(text)
    again = make_config(str(tmp_path / "p.toml"))
    assert dataclasses.replace(again, threads=2) == cfg and "threads" not in text


def test_resume_contradictions():
    saved = make_config("paper", limit=2000, epochs=3, split="canonical")
    assert config.contradictions(saved, {"limit": 2000, "threads": 4, "device": "cpu", "data_dir": "/x"}) == []
    assert config.contradictions(saved, {"optimizer": "sgd", "model_options": {"dropout": 0.2, "width": 48}}) == [
        "--optimizer sgd (the run has adam)", "--model-option width=48 (the run has width=unset)"]
    # an option the run left to the model's default may be repeated with that default's value, not another
    assert config.contradictions(saved, {"model_options": {"dropout": 0.2, "channels": [32, 64, 128, 256]}}) == []
    assert config.contradictions(saved, {"model_options": {"dropout": 0.3}}) == [
        "--model-option dropout=0.3 (the run has dropout=0.2)"]
    resumed = config.for_resume(saved, {"threads": 1, "epochs": 3}, "R/last.pt")
    assert resumed == dataclasses.replace(saved, threads=1)
    with pytest.raises(DigitrecError, match="--resume: R/last.pt was trained with other settings: --split paper"):
        config.for_resume(saved, {"split": "paper"}, "R/last.pt")


def test_checkpoint_config_of_an_older_version_loads():
    saved = {k: v for k, v in dataclasses.asdict(TrainConfig()).items() if k not in ("noise", "backbone_lr")}
    assert config.from_dict({**saved, "retired_setting": 1}, "x") == TrainConfig()
    with pytest.raises(DigitrecError, match="x: its configuration is not valid"):
        config.from_dict({**saved, "epochs": "many"}, "x")
    with pytest.raises(DigitrecError, match="x: holds no training configuration"):
        config.from_dict(["not", "a", "dict"], "x")


def test_generated_flags_work_under_intermixed_parsing():
    args = _train_parser().parse_args(["train", "--epochs", "2", "--out", "r", "--no-augment", "--lr", "0.1"])
    assert (args.epochs, args.out, args.augment, args.lr) == (2, "r", False, 0.1)
    assert not hasattr(args, "batch_size")  # not given: not in the namespace, the preset decides
    assert isinstance(_train_parser(), argparse.ArgumentParser)
