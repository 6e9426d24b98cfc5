"""The CPU fast path of the answer-only loss: one shared prompt prefix per batch, attention per example.

Why: on a CPU, fwyy trains padding-free batches (examples laid end to end) and two costs there are
pure waste. (1) transformers' sdpa path turns a pack of N tokens into an N x N block-diagonal mask,
so attention costs as if the pack were one long sequence, and no causal block is ever skipped;
that was about 30% of a demo step. (2) Every training record starts with the same system prompt
(~110 tokens of a ~280-token example), so a batch of 4 runs the same tokens through every layer
4 times.

What is done instead, for one padding-free micro-batch:
- The longest prefix that every example of the batch shares, and that is all prompt (no position
  in it predicts an answer token), is kept once: the pack becomes [prefix, rest of example 1, rest
  of example 2, ...] with each rest keeping its own position ids (they continue after the prefix).
- Attention runs per example: example 1 over [prefix, rest 1], every other example over its rest
  against the prefix's keys and values and its own, causally (`segment_attention`, registered with
  transformers' AttentionInterface and switched on only for this forward).

This is the same function of the LoRA weights, not an approximation: the dropped copies of the
prefix had exactly the kept copy's hidden states (same tokens, same positions, causal attention),
their positions carry no loss, and the kept prefix's keys and values feed every example, so its
gradient is the sum over the examples, as before. Only the order of float sums changes
(tests/test_finetune_shared_prefix.py checks loss and gradients against the plain path).

It applies to padding-free batches of decoder models whose attention fwyy has checked (Llama,
Qwen2: `shared_prefix_usable`); anything else keeps the plain path (finetune.sft.answer_loss_sum).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ATTENTION_NAME = "fwyy_segments"
"""The name `segment_attention` is registered under in transformers' AttentionInterface."""

MODEL_TYPES = ("llama", "qwen2")
"""Model families whose attention call was checked to pass through `segment_attention` unchanged."""

MIN_PREFIX = 8
"""Below this many shared tokens, sharing saves less than the bookkeeping costs: attention per example only."""


@dataclass
class Pack:
    """A padding-free micro-batch laid out with its shared prefix once (see the module docstring)."""

    input_ids: Any
    """[1, tokens] token ids of the compact pack."""
    position_ids: Any
    """[1, tokens] each token's position in its own example (the prefix: 0..prefix-1)."""
    targets: Any
    """[tokens] the token each position predicts, -100 where no loss is taken (as in the plain path)."""
    prefix: int
    """Shared tokens at the start of the pack (0: nothing shared, attention per example only)."""
    spans: list[tuple[int, int]]
    """[start, end) in the pack of each example's own tokens (the first one starts after the prefix)."""
    original_tokens: int
    """Tokens of the padding-free batch this pack came from (what a step trains)."""
    calls: int = 0
    """Attention layers that went through segment_attention in the last forward (a guard)."""
    _masks: dict[int, Any] = field(default_factory=dict)

    def mask(self, i: int) -> Any:
        """Example i's (i >= 1) boolean mask [own tokens, prefix + own tokens]: prefix all, own causal.

        Built once per pack and shared by every layer.
        """
        import torch

        if i not in self._masks:
            a, b = self.spans[i]
            own = b - a
            self._masks[i] = torch.ones(own, self.prefix + own, dtype=torch.bool).tril(diagonal=self.prefix)
        return self._masks[i]


def _first_target(targets: Any) -> int:
    hits = (targets != -100).nonzero()
    return int(hits[0, 0]) if hits.numel() else int(targets.shape[0])


def _shared_length(ids: Any, starts: list[int], lengths: list[int]) -> int:
    """How many leading tokens every example has in common."""
    import torch

    shortest = min(lengths)
    heads = torch.stack([ids[s : s + shortest] for s in starts])
    differs = (heads != heads[0]).any(dim=0).nonzero()
    return int(differs[0, 0]) if differs.numel() else shortest


def plan_pack(inputs: dict[str, Any], min_prefix: int = MIN_PREFIX) -> Pack | None:
    """The compact pack of a padding-free batch (TRL's collator output), or None if it is not one.

    A padding-free batch is one row with position_ids that restart at 0 at every example and count
    up by one inside it; anything else (padded rows, an attention mask) is left to the plain path.
    """
    import torch
    import torch.nn.functional as F

    ids, labels, pos = inputs.get("input_ids"), inputs.get("labels"), inputs.get("position_ids")
    if ids is None or labels is None or pos is None or "attention_mask" in inputs:
        return None
    if ids.dim() != 2 or ids.shape[0] != 1 or pos.shape != ids.shape or labels.shape != ids.shape:
        return None
    ids, labels, pos = ids[0], labels[0], pos[0]
    total = int(ids.shape[0])
    starts = (pos == 0).nonzero().flatten().tolist()
    if not starts or starts[0] != 0:
        return None
    ends = starts[1:] + [total]
    lengths = [e - s for s, e in zip(starts, ends, strict=True)]
    owner_start = torch.repeat_interleave(torch.tensor(starts), torch.tensor(lengths))
    if not torch.equal(pos.cpu(), torch.arange(total) - owner_start):
        return None
    # Position i predicts token i + 1: the same targets as finetune.sft.answer_loss_sum.
    targets = F.pad(labels, (0, 1), value=-100)[1:]
    prefix = 0
    if len(starts) > 1:
        firsts = [_first_target(targets[s:e]) for s, e in zip(starts, ends, strict=True)]
        prefix = min(_shared_length(ids, starts, lengths), min(firsts), min(lengths) - 1)
        if prefix < min_prefix:
            prefix = 0
    keep = [torch.arange(0, ends[0])] + [
        torch.arange(s + prefix, e) for s, e in zip(starts[1:], ends[1:], strict=True)
    ]
    index = torch.cat(keep).to(ids.device)
    # The first example keeps the prefix in place; every other one keeps only its own tokens.
    spans, at = [(prefix, lengths[0])], lengths[0]
    for n in lengths[1:]:
        spans.append((at, at + n - prefix))
        at += n - prefix
    return Pack(
        input_ids=ids[index].unsqueeze(0),
        position_ids=pos[index].unsqueeze(0),
        targets=targets[index],
        prefix=prefix,
        spans=spans,
        original_tokens=total,
    )


def segment_attention(
    module: Any,
    query: Any,
    key: Any,
    value: Any,
    attention_mask: Any,
    dropout: float = 0.0,
    scaling: float | None = None,
    fwyy_pack: Pack | None = None,
    **kwargs: Any,
) -> tuple[Any, None]:
    """Causal attention per example of a Pack: [prefix, own tokens] for each, never across examples.

    Called by transformers' attention modules (query [1, heads, tokens, dim], key/value with the
    model's key-value heads) with the Pack passed down from the model call as `fwyy_pack`.
    """
    import torch
    import torch.nn.functional as F

    if fwyy_pack is None or attention_mask is not None:
        raise RuntimeError("segment_attention needs a Pack and no attention mask (finetune.shared_prefix)")
    if kwargs.get("sliding_window") or kwargs.get("softcap") or kwargs.get("s_aux") is not None:
        raise RuntimeError("segment_attention supports plain causal attention only")
    groups = int(getattr(module, "num_key_value_groups", 1))
    if groups > 1:
        key = key.repeat_interleave(groups, dim=1)
        value = value.repeat_interleave(groups, dim=1)
    # split (not slicing per example): its backward is one concatenation, not a zero-filled
    # full-size gradient per example.
    sizes = [b - a for a, b in fwyy_pack.spans]
    sizes[0] += fwyy_pack.prefix
    queries, keys, values = (t.split(sizes, dim=2) for t in (query, key, value))
    p = fwyy_pack.prefix
    drop = dropout if module.training else 0.0
    outputs = [
        F.scaled_dot_product_attention(
            queries[0], keys[0], values[0], dropout_p=drop, is_causal=True, scale=scaling
        )
    ]
    for i in range(1, len(sizes)):
        k, v = keys[i], values[i]
        if p:  # the example's own tokens see the whole prefix, and themselves causally
            k = torch.cat((keys[0][:, :, :p], k), dim=2)
            v = torch.cat((values[0][:, :, :p], v), dim=2)
        outputs.append(
            F.scaled_dot_product_attention(
                queries[i],
                k,
                v,
                attn_mask=fwyy_pack.mask(i) if p else None,
                dropout_p=drop,
                is_causal=not p,
                scale=scaling,
            )
        )
    fwyy_pack.calls += 1
    return torch.cat(outputs, dim=2).transpose(1, 2).contiguous(), None


def register() -> None:
    """Make `segment_attention` known to transformers (idempotent)."""
    from transformers import AttentionInterface

    AttentionInterface.register(ATTENTION_NAME, segment_attention)


def _attention_configs(model: Any) -> list[Any]:
    """Every distinct config object an attention module of the model reads its implementation from."""
    configs: dict[int, Any] = {}
    for module in model.modules():
        config = getattr(module, "config", None)
        if config is not None and hasattr(config, "_attn_implementation"):
            configs[id(config)] = config
    return list(configs.values())


def shared_prefix_usable(model: Any) -> str | None:
    """None when the fast path is exact for this model here, else why not (kept in the run's settings)."""
    try:
        device = next(model.parameters()).device
    except StopIteration:
        return "the model has no parameters"
    if device.type != "cpu":
        return f"the model is on {device.type}, the fast path is for the CPU"
    config = model.config
    model_type = getattr(config, "model_type", "")
    if model_type not in MODEL_TYPES:
        return f"model type {model_type!r} is not one of {', '.join(MODEL_TYPES)}"
    if getattr(config, "_attn_implementation", None) not in ("sdpa", "eager"):
        return f"attention implementation {config._attn_implementation!r}"
    if getattr(config, "use_sliding_window", False) or getattr(config, "attention_dropout", 0.0):
        return "sliding-window attention or attention dropout"
    if len(_attention_configs(model)) != 1:
        return "the attention modules do not share one config"
    return None


def answer_loss_sum_shared(model: Any, pack: Pack, config: Any = None) -> tuple[Any, Any]:
    """(summed NLL of the answer tokens, their number) over a Pack: what answer_loss_sum computes.

    Only positions that predict an answer token go through the LM head, as in the plain path.
    `config` is the model's config (give it when `model` is wrapped, e.g. in DDP).
    """
    import torch
    import torch.nn.functional as F

    register()
    config = config if config is not None else model.config
    keep = (pack.targets != -100).nonzero().squeeze(-1)
    previous = config._attn_implementation
    config._attn_implementation = ATTENTION_NAME
    pack.calls = 0
    try:
        logits = model(
            input_ids=pack.input_ids,
            position_ids=pack.position_ids,
            use_cache=False,
            logits_to_keep=keep,
            fwyy_pack=pack,
        ).logits
    finally:
        config._attn_implementation = previous
    layers = int(getattr(config, "num_hidden_layers", pack.calls))
    if pack.calls != layers:
        raise RuntimeError(
            f"segment_attention ran in {pack.calls} of {layers} layers (finetune.shared_prefix)"
        )
    chosen = pack.targets[keep]
    total = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), chosen, reduction="sum")
    return total, torch.tensor(float(chosen.numel()))
