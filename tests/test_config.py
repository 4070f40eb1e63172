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
