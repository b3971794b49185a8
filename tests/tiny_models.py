"""Tiny random-weight model files that ComfyUI's real loaders accept, made by the test that needs them.

The VAE has the key layout of TAESD (the tiny autoencoder ComfyUI ships the code for): ComfyUI's `VAE`
recognises it by `taesd_decoder.1.weight`, builds it, and loads it through `load_models_gpu` like any VAE.
Random weights decode to noise, which is all a test of loading needs; the file is about 10 MB.
"""

from __future__ import annotations

from pathlib import Path


def _taesd_block(prefix: str, sd: dict, torch) -> None:
    for i in (0, 2, 4):
        sd[f"{prefix}.conv.{i}.weight"] = torch.randn(64, 64, 3, 3) * 0.05
        sd[f"{prefix}.conv.{i}.bias"] = torch.zeros(64)


def tiny_vae(path: Path, latent_channels: int = 4) -> Path:
    """Write a random TAESD-layout VAE to `path` (safetensors) and return the path."""
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(0)
    sd: dict = {}

    def conv(name: str, n_in: int, n_out: int, bias: bool = True) -> None:
        sd[f"{name}.weight"] = torch.randn(n_out, n_in, 3, 3) * 0.05
        if bias:
            sd[f"{name}.bias"] = torch.zeros(n_out)

    # Encoder: conv, Block, then three times (strided conv, 3 Blocks), then conv to the latent.
    conv("taesd_encoder.0", 3, 64)
    _taesd_block("taesd_encoder.1", sd, torch)
    for start in (2, 6, 10):
        conv(f"taesd_encoder.{start}", 64, 64, bias=False)
        for block in range(start + 1, start + 4):
            _taesd_block(f"taesd_encoder.{block}", sd, torch)
    conv("taesd_encoder.14", 64, latent_channels)
    # Decoder: Clamp, conv, ReLU, then three times (3 Blocks, Upsample, conv), then a Block and conv to RGB.
    conv("taesd_decoder.1", latent_channels, 64)
    for start in (3, 8, 13):
        for block in range(start, start + 3):
            _taesd_block(f"taesd_decoder.{block}", sd, torch)
        conv(f"taesd_decoder.{start + 4}", 64, 64, bias=False)
    _taesd_block("taesd_decoder.18", sd, torch)
    conv("taesd_decoder.19", 64, 3)
    sd["vae_scale"] = torch.tensor(1.0)
    sd["vae_shift"] = torch.tensor(0.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    return path


def tiny_weights(path: Path, seed: int = 0) -> Path:
    """A real safetensors file of a few random weights: ComfyUI's `load_torch_file` reads it like any model."""
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"weight": torch.randn(4, 4)}, str(path))
    return path
