"""Device choice and mixed precision, shared by the segmenter, the VLM and training.

``"auto"`` means CUDA when available, else CPU. On CUDA, inference runs under bf16 autocast;
on CPU it runs in fp32. Training runs with PyTorch's cuDNN attention kernel off
(`training_attention`). Asking for CUDA where there is none is an error, never a silent
switch to CPU (which would change speed and numerics without saying so).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> ``cuda`` if available else ``cpu``; an explicit CUDA without one raises."""
    if isinstance(device, torch.device):
        device = str(device)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    out = torch.device(device)
    if out.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} requested but CUDA is not available")
    return out


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA; nothing on CPU (fp32)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@contextlib.contextmanager
def inference_context(device: torch.device) -> Iterator[None]:
    """``torch.inference_mode`` plus bf16 autocast on CUDA (fp32 on CPU)."""
    with torch.inference_mode(), autocast(device):
        yield


@contextlib.contextmanager
def training_attention() -> Iterator[None]:
    """PyTorch's cuDNN attention kernel switched off while training (SDPA then runs
    FlashAttention, memory-efficient or math kernels): on H100/H200 its backward returns NaN
    gradients for some masked sequence lengths (README, "Training (GRPO)"). CPU is unchanged."""
    before = torch.backends.cuda.cudnn_sdp_enabled()
    torch.backends.cuda.enable_cudnn_sdp(False)
    try:
        yield
    finally:
        torch.backends.cuda.enable_cudnn_sdp(before)
