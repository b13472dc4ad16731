"""Analyses that show *why* a RoPE variant fails: attention pooled per frame, from all rotary
pairs or from a band of them (:mod:`.attention_math`), on the rotated queries and keys caught
during a model's own forward pass (:mod:`.capture`)."""

__all__: list[str] = []
