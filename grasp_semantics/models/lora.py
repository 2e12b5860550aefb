"""Low-rank adapters added by forward hooks, not by replacing modules: the adapted model's
modules, state-dict keys and outputs stay exactly as they are, and the adapters act only while
a gate says so (per thread: :class:`Switch`). The describer's adapters on the shared grasp
backbone (``scene_describer.py``)."""

from __future__ import annotations

import fnmatch
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn


class Switch:
    """A per-thread on/off flag: adapters act only in the thread that is generating."""

    def __init__(self) -> None:
        self._local = threading.local()

    @property
    def on(self) -> bool:
        return getattr(self._local, "on", False)

    @contextmanager
    def enabled(self) -> Iterator[None]:
        before = self.on
        self._local.on = True
        try:
            yield
        finally:
            self._local.on = before


def _lora_dims(module: nn.Module) -> tuple[int, int] | None:
    """(in, out) features of a layer LoRA can adapt: a linear layer, or a patch embedding (a
    convolution whose stride equals its kernel: a linear map of each flattened patch)."""
    if isinstance(module, nn.Linear):
        return module.in_features, module.out_features
    if isinstance(module, nn.Conv2d | nn.Conv3d) and module.stride == module.kernel_size:
        patch = module.in_channels // module.groups
        for size in module.kernel_size:
            patch *= size
        return patch, module.out_channels
    return None


class HookedLoRA(nn.Module):
    """LoRA (``x -> x + s * B(A(x))``, B zero-initialised) on the linear layers and patch
    embeddings of ``model`` whose names match ``patterns``, added by forward hooks while
    ``gate(name)`` says so for the layer's module name."""

    def __init__(
        self,
        model: nn.Module,
        patterns: Sequence[str],
        r: int,
        alpha: float,
        gate: Callable[[str], bool],
    ) -> None:
        super().__init__()
        self.scale = alpha / r
        self.down = nn.ModuleDict()
        self.up = nn.ModuleDict()
        self._handles = []
        self.names: set[str] = set()  # the adapted modules' names
        for name, module in model.named_modules():
            dims = _lora_dims(module)
            if dims is None or not any(fnmatch.fnmatchcase(name, p) for p in patterns):
                continue
            key = _module_key(name)
            self.down[key] = nn.Linear(dims[0], r, bias=False)
            self.up[key] = nn.Linear(r, dims[1], bias=False)
            nn.init.kaiming_uniform_(self.down[key].weight, a=5**0.5)
            nn.init.zeros_(self.up[key].weight)
            self._handles.append(module.register_forward_hook(self._hook(key, name, gate)))
            self.names.add(name)
        if patterns and not self._handles:
            raise ValueError(
                f"no linear layer or patch embedding matches the LoRA targets {list(patterns)}"
            )

    def _hook(self, key: str, name: str, gate: Callable[[str], bool]):
        def hook(module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor | None:
            if not gate(name):
                return None  # grasp path (or the other view's adapters): output untouched
            x = args[0].to(self.down[key].weight.dtype)
            if not isinstance(module, nn.Linear):  # patch embedding: [N, C, (T,) p, p] patches
                if output[0].numel() != output.shape[1]:
                    raise ValueError(f"LoRA on {key}: input is not one patch per sample")
                x = x.flatten(1)  # [N, C*T*p*p] -> delta [N, out] -> [N, out, 1, (1,) 1]
                delta = self.up[key](self.down[key](x)).view(output.shape)
            else:
                delta = self.up[key](self.down[key](x))
            return output + (self.scale * delta).to(output.dtype)

        return hook

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []


def _module_key(name: str) -> str:
    """A module name usable as a ModuleDict key (no dots)."""
    return name.replace(".", "__")
