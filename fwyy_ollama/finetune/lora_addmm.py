"""LoRA's `W x + s * B(A x)` as one addmm on the CPU: the same numbers, two fewer passes over the output.

Why: peft computes `result + lora_B(lora_A(x)) * scaling`, which after the two small matmuls
allocates and walks the full [tokens, out] output twice more (the multiply, then the add), and
once more backwards. On a CPU, memory passes over ~1000 x 1536 floats are not free next to a 576 x
1536 matmul: on the demo recipe they were about 15% of a step. `torch.addmm(result, A x, B^T,
alpha=s)` does the B matmul, the scaling and the add in the matmul's own output pass.

Only plain LoRA layers are switched (one adapter, no dropout, no DoRA or other variant, no LoRA
bias, not merged, an nn.Linear base); every other layer keeps peft's forward, and any call with
extra arguments goes to peft's forward too.
"""

from __future__ import annotations

from functools import cache
from typing import Any


@cache
def _fused_class() -> type:
    import torch
    import torch.nn.functional as F
    from peft.tuners.lora.layer import Linear

    class AddmmLoraLinear(Linear):  # type: ignore[misc]
        """peft's lora.Linear whose plain forward is base matmul + one addmm (see the module docstring)."""

        def forward(self, x: Any, *args: Any, **kwargs: Any) -> Any:
            if args or kwargs or self.disable_adapters or self.merged:
                return super().forward(x, *args, **kwargs)
            (name,) = self.active_adapters
            base = self.base_layer
            result = F.linear(x, base.weight, base.bias)
            down = F.linear(x, self.lora_A[name].weight)
            flat = torch.addmm(
                result.reshape(-1, result.shape[-1]),
                down.reshape(-1, down.shape[-1]),
                self.lora_B[name].weight.t(),
                alpha=self.scaling[name],
            )
            return flat.view(result.shape)

    return AddmmLoraLinear


def _plain_lora(module: Any) -> bool:
    import torch
    from peft.tuners.lora.layer import Linear

    if type(module) is not Linear or module.merged or len(module.active_adapters) != 1:
        return False
    (name,) = module.active_adapters
    if name not in module.lora_A or name in getattr(module, "lora_variant", {}):
        return False
    return (
        isinstance(module.lora_dropout[name], torch.nn.Identity)
        and getattr(module.lora_B[name], "bias", None) is None
        and isinstance(module.base_layer, torch.nn.Linear)
        and module.lora_A[name].weight.dtype == module.base_layer.weight.dtype
    )


def fuse_lora(model: Any) -> int:
    """Switch every plain LoRA linear of the model to the addmm forward; returns how many."""
    fused = _fused_class()
    count = 0
    for module in model.modules():
        if _plain_lora(module):
            module.__class__ = fused
            count += 1
    return count


def unfuse_lora(model: Any) -> None:
    """Back to peft's own forward (tests compare both)."""
    from peft.tuners.lora.layer import Linear

    fused = _fused_class()
    for module in model.modules():
        if type(module) is fused:
            module.__class__ = Linear
