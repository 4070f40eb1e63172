"""Transfer learning on the training path: pretrained backbone weights, --init-from, freezing, backbone learning rate.

The backbone of a model is the part worth transferring:
  resnet18, hybrid   `model.backbone`, the ResNet-18 (in hybrid: its ResNet branch; the CNN branch always trains)
  paper-cnn          `model.features`, the paper's 4-conv stack (its FC 512 + output layer are the head)
Other models have none; asking to freeze one, or to give it its own learning rate, is an error.

- `--backbone-weights imagenet|PATH|none` fills a ResNet-18 backbone at creation of a NEW run (never on
  --resume): torchvision's ImageNet weights (`ResNet18_Weights.IMAGENET1K_V1`, through torchvision's weights
  API and its cache), a torchvision-format state_dict file, or a digitrec resnet18/hybrid checkpoint (its
  backbone is taken). Loading is strict apart from the classifier (`fc.*`, never used) and conv1, which is
  adapted to grayscale (`models.resnet.adapt_conv1`) or, when the kernel sizes differ (a 7×7 ImageNet stem
  into the 3×3 stem of input_size 28), left freshly initialised — `load_backbone` says so in its notes.
- `--init-from RUN/model.pt` loads a whole digitrec checkpoint into the new model, strictly, except that the
  output layer is re-initialised when its shape differs (pretraining on one label set, fine-tuning on another).
- `--freeze backbone` stops gradients into the backbone AND keeps it in eval mode while training, so its
  BatchNorm running statistics stay those of pretraining; `--unfreeze-epoch E` freezes it for epochs 1..E-1
  (gradual unfreezing) and trains it from epoch E; `--backbone-lr` gives the backbone its own learning rate.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from . import checkpoint
from .config import TrainConfig
from .errors import DigitrecError

IMAGENET_HELP = ("download resnet18-f37072fd.pth (torchvision's ResNet18_Weights.IMAGENET1K_V1) on a machine with "
                 "network and pass it with --backbone-weights /path/resnet18-f37072fd.pth")


def backbone_of(model: nn.Module) -> nn.Module | None:
    model = checkpoint.unwrap(model)
    for name in ("backbone", "features"):
        part = getattr(model, name, None)
        if isinstance(part, nn.Module):
            return part
    return None


def _require_backbone(model: nn.Module, cfg: TrainConfig, what: str) -> nn.Module:
    part = backbone_of(model)
    if part is None:
        raise DigitrecError(f"{what}: model {cfg.model!r} has no backbone (resnet18, hybrid and paper-cnn have one)")
    return part


def uses_backbone(cfg: TrainConfig) -> bool:
    return cfg.freeze != "none" or cfg.unfreeze_epoch is not None or cfg.backbone_lr is not None


def check(cfg: TrainConfig, resume: bool = False) -> None:
    """Fail fast (before any data is read or file written) on transfer settings that cannot work."""
    spec = cfg.backbone_weights
    if spec not in ("none", "imagenet"):
        path = Path(spec).expanduser()
        if not path.is_file() and not resume:  # a resume takes every weight from last.pt
            raise DigitrecError(f"--backbone-weights {spec}: no such file (use imagenet, none or a weights file)")
        if cfg.model not in ("resnet18", "hybrid"):
            raise DigitrecError(f"--backbone-weights: model {cfg.model!r} has no ResNet-18 backbone "
                                "(use resnet18 or hybrid, or --init-from for any model)")
    if spec == "imagenet" and cfg.model not in ("resnet18", "hybrid"):
        raise DigitrecError(f"--backbone-weights: model {cfg.model!r} has no ResNet-18 backbone (use resnet18 or hybrid)")
    if cfg.init_from and spec != "none":
        raise DigitrecError("--init-from and --backbone-weights both set: --init-from already loads every weight; "
                            "choose one")


# --- pretrained ResNet-18 weights -------------------------------------------------------------------------------


def imagenet_state_dict() -> dict[str, torch.Tensor]:
    """torchvision's ImageNet ResNet-18 weights (from its cache in $TORCH_HOME, else downloaded)."""
    from torchvision.models import ResNet18_Weights

    try:
        return ResNet18_Weights.IMAGENET1K_V1.get_state_dict(progress=False, check_hash=True, weights_only=True)
    except Exception as e:  # URLError, HTTP errors, hash mismatch, unreadable cache: all mean "not available"
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise DigitrecError(f"--backbone-weights imagenet: could not get the weights ({first}); {IMAGENET_HELP}") from None


def read_backbone_file(path: str | Path) -> dict[str, torch.Tensor]:
    """A torchvision-format ResNet-18 state_dict, or the backbone of a digitrec resnet18/hybrid checkpoint."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DigitrecError(f"--backbone-weights {path}: no such file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # unpickling / zip / EOF errors: the file is not a torch weights file
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise DigitrecError(f"--backbone-weights {path}: not a readable weights file ({first})") from None
    if isinstance(obj, dict) and obj.get("format") == checkpoint.FORMAT:
        if obj.get("model_name") not in ("resnet18", "hybrid"):
            raise DigitrecError(f"--backbone-weights {path}: a {obj.get('model_name')!r} checkpoint has no ResNet-18 "
                                "backbone (use --init-from to start from it)")
        prefix = "backbone.net."
        return {k[len(prefix):]: v for k, v in obj["model"].items() if k.startswith(prefix)}
    if isinstance(obj, dict) and obj and all(isinstance(k, str) and torch.is_tensor(v) for k, v in obj.items()):
        return dict(obj)
    raise DigitrecError(f"--backbone-weights {path}: not a state_dict (a dict of tensors) nor a digitrec checkpoint")


def load_backbone(backbone: nn.Module, state: dict[str, torch.Tensor], source: str) -> list[str]:
    """Load ResNet-18 weights into a ResNet18Backbone; returns notes on what was adapted or left fresh."""
    from .models.resnet import adapt_conv1

    net = backbone.net
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}  # ImageNet's classifier: not used
    notes: list[str] = []
    skip: set[str] = set()
    w = state.get("conv1.weight")
    if w is not None and w.dim() == 4:
        if tuple(w.shape[-2:]) != tuple(net.conv1.weight.shape[-2:]):
            del state["conv1.weight"]
            skip.add("conv1.weight")
            notes.append(f"conv1: pretrained {w.shape[-2]}×{w.shape[-1]} filters do not fit the "
                         f"{net.conv1.kernel_size[0]}×{net.conv1.kernel_size[1]} stem: conv1 left freshly initialised")
        elif w.shape[1] == 3:
            state["conv1.weight"] = adapt_conv1(w)
            notes.append("conv1: RGB filters summed into one grayscale filter")
    own = net.state_dict()
    # num_batches_tracked is absent from old torchvision files; BatchNorm fills it in when loading them
    missing = sorted(k for k in own if k not in state and k not in skip and not k.endswith("num_batches_tracked"))
    unexpected = sorted(k for k in state if k not in own)
    if missing or unexpected:
        parts = ([f"missing {', '.join(missing[:3])}{' …' if len(missing) > 3 else ''}"] if missing else []) + \
                ([f"unexpected {', '.join(unexpected[:3])}{' …' if len(unexpected) > 3 else ''}"] if unexpected else [])
        raise DigitrecError(f"--backbone-weights {source}: not ResNet-18 weights ({'; '.join(parts)})")
    try:
        net.load_state_dict(state, strict=not skip)
    except RuntimeError as e:  # shapes that differ
        detail = next((ln.strip() for ln in str(e).splitlines() if "size mismatch" in ln), str(e).splitlines()[0])
        raise DigitrecError(f"--backbone-weights {source}: weights do not fit ResNet-18 ({detail[:200]})") from None
    return notes


def apply_backbone_weights(model: nn.Module, cfg: TrainConfig) -> list[str]:
    spec = cfg.backbone_weights
    if spec == "none":
        return []
    from .models.resnet import ResNet18Backbone

    backbone = backbone_of(model)
    if not isinstance(backbone, ResNet18Backbone):
        raise DigitrecError(f"--backbone-weights: model {cfg.model!r} has no ResNet-18 backbone (use resnet18 or hybrid)")
    state = imagenet_state_dict() if spec == "imagenet" else read_backbone_file(spec)
    return load_backbone(backbone, state, spec)


# --- --init-from -------------------------------------------------------------------------------------------------


def _head_keys(model: nn.Module) -> set[str]:
    """Parameter names of the output layer: the last nn.Linear."""
    last = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            last = name
    return {f"{last}.weight", f"{last}.bias"} if last is not None else set()


def init_from(model: nn.Module, path: str) -> list[str]:
    """Load a digitrec checkpoint's weights; an output layer of another shape is left new. Returns notes."""
    ckpt = checkpoint.load(path)
    src = ckpt["model"]
    own = model.state_dict()
    head = _head_keys(model)
    differ = [k for k in src if k in own and tuple(src[k].shape) != tuple(own[k].shape)]
    # only a different class count may change the output layer; any other difference is a different network
    bad = [k for k in differ if k not in head or src[k].shape[0] == own[k].shape[0]]
    if bad:
        k = bad[0]
        raise DigitrecError(f"--init-from {path}: {ckpt.get('model_name')!r} weights do not fit this model "
                            f"({k}: {tuple(src[k].shape)} vs {tuple(own[k].shape)})")
    result = model.load_state_dict({k: v for k, v in src.items() if k not in differ}, strict=False)
    missing = sorted(set(result.missing_keys) - set(differ))
    if missing or result.unexpected_keys:
        what = f"missing {missing[0]}" if missing else f"unexpected {result.unexpected_keys[0]}"
        raise DigitrecError(f"--init-from {path}: a {ckpt.get('model_name')!r} checkpoint does not fit this model "
                            f"({what}{' …' if len(missing) + len(result.unexpected_keys) > 1 else ''})")
    if differ:
        return [f"output layer re-initialised: {ckpt.get('num_classes')} classes in {path}, "
                f"{own[sorted(differ)[0]].shape[0]} here"]
    return []


# --- freezing and learning rates ---------------------------------------------------------------------------------


def param_groups(model: nn.Module, cfg: TrainConfig) -> list[dict[str, Any]] | Any:
    """Optimizer parameter groups: [head, backbone (lr = --backbone-lr)] when the backbone has its own lr."""
    if not uses_backbone(cfg):
        return model.parameters()
    backbone = _require_backbone(model, cfg, "--freeze/--unfreeze-epoch/--backbone-lr")
    inside = {id(p) for p in backbone.parameters()}
    rest = [p for p in model.parameters() if id(p) not in inside]
    return [{"params": rest, "name": "head"},
            {"params": list(backbone.parameters()), "lr": cfg.backbone_lr or cfg.lr, "name": "backbone"}]


def backbone_frozen(cfg: TrainConfig, epoch: int) -> bool:
    """Whether the backbone is frozen in (1-based) `epoch`."""
    if cfg.unfreeze_epoch is not None:
        return epoch < cfg.unfreeze_epoch
    return cfg.freeze == "backbone"


def set_frozen(model: nn.Module, frozen: bool) -> None:
    """requires_grad off/on for the backbone (params without a gradient are skipped by every optimizer step)."""
    backbone = backbone_of(model)
    if backbone is not None:
        for p in backbone.parameters():
            p.requires_grad_(not frozen)


def train_mode(model: nn.Module, frozen: bool) -> None:
    """model.train(), with a frozen backbone in eval mode: its BatchNorm statistics stay fixed, dropout off."""
    model.train()
    backbone = backbone_of(model)
    if frozen and backbone is not None:
        backbone.eval()


def prepare(model: nn.Module, cfg: TrainConfig, resume: bool, distributed: bool,
            log: Callable[[str], None]) -> None:
    """At model creation: pretrained backbone weights (new runs only) and the first epoch's freezing."""
    if uses_backbone(cfg):
        _require_backbone(model, cfg, "--freeze/--unfreeze-epoch/--backbone-lr")
    if distributed and cfg.unfreeze_epoch is not None:  # DDP fixes the set of trained parameters when it wraps
        raise DigitrecError("--unfreeze-epoch does not work with torchrun (DDP); freeze for the whole run or not at all")
    if not resume:  # a resume restores every weight from last.pt
        for note in apply_backbone_weights(model, cfg):
            log(f"backbone weights {cfg.backbone_weights}: {note}")
    set_frozen(model, backbone_frozen(cfg, 1))


def start_epoch(model: nn.Module, cfg: TrainConfig, epoch: int) -> None:
    """Training mode for (1-based) `epoch`: the backbone frozen or trained as the schedule says."""
    if not uses_backbone(cfg):
        model.train()
        return
    frozen = backbone_frozen(cfg, epoch)
    set_frozen(model, frozen)
    train_mode(model, frozen)
