"""The Whisper-base converter: transformers' encoder on the converted weights equals an independent numpy encoder
computed straight from the CTranslate2 variables (the weights' own computation), full-length and truncated."""

import numpy as np
import pytest
import torch

from dlhub.errors import ModelNotFoundError
from dlhub.whisper_ct2 import ct2_package_files, ct2_to_transformers, read_ct2_model, whisper_config


@pytest.fixture(scope="module")
def ct2():
    parts, _ = ct2_package_files()
    variables, aliases = read_ct2_model(b"".join(p.read_bytes() for p in parts))
    assert aliases == {"decoder/projection/weight": "decoder/embeddings/weight"}
    return variables


def gelu(x):
    from scipy.special import erf

    return 0.5 * x * (1 + erf(x / np.sqrt(2)))


def layer_norm(x, gamma, beta):
    mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-5) * gamma + beta


def conv1d(x, w, b, stride):  # x (C_in, T), w (C_out, C_in, 3), padding 1
    x = np.pad(x, ((0, 0), (1, 1)))
    t_out = (x.shape[1] - 3) // stride + 1
    cols = np.stack([x[:, i * stride:i * stride + 3] for i in range(t_out)])  # (T, C_in, 3)
    return np.einsum("tck,ock->ot", cols, w) + b[:, None]


def numpy_encoder(ct2, mel):
    """Whisper's encoder written from its definition, on the CTranslate2 variables (float64)."""
    v = {k: a.astype(np.float64) for k, a in ct2.items() if a.dtype == np.float16}
    x = gelu(conv1d(mel, v["encoder/conv1/weight"], v["encoder/conv1/bias"], 1))
    x = gelu(conv1d(x, v["encoder/conv2/weight"], v["encoder/conv2/bias"], 2)).T
    x = x + v["encoder/position_encodings/encodings"][: len(x)]
    heads, d = int(ct2["encoder/num_heads"]), x.shape[1]
    for i in range(6):
        p = f"encoder/layer_{i}"
        h = layer_norm(x, v[f"{p}/self_attention/layer_norm/gamma"], v[f"{p}/self_attention/layer_norm/beta"])
        qkv = h @ v[f"{p}/self_attention/linear_0/weight"].T + v[f"{p}/self_attention/linear_0/bias"]
        q, k, val = (qkv[:, j * d:(j + 1) * d].reshape(len(x), heads, -1).transpose(1, 0, 2) for j in range(3))
        logits = q @ k.transpose(0, 2, 1) / np.sqrt(d // heads)
        att = np.exp(logits - logits.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        out = (att @ val).transpose(1, 0, 2).reshape(len(x), d)
        x = x + out @ v[f"{p}/self_attention/linear_1/weight"].T + v[f"{p}/self_attention/linear_1/bias"]
        h = layer_norm(x, v[f"{p}/ffn/layer_norm/gamma"], v[f"{p}/ffn/layer_norm/beta"])
        h = gelu(h @ v[f"{p}/ffn/linear_0/weight"].T + v[f"{p}/ffn/linear_0/bias"])
        x = x + h @ v[f"{p}/ffn/linear_1/weight"].T + v[f"{p}/ffn/linear_1/bias"]
    return layer_norm(x, v["encoder/layer_norm/gamma"], v["encoder/layer_norm/beta"])


@pytest.mark.parametrize("positions", [50, pytest.param(1500, marks=pytest.mark.slow)])  # 1500: the whole 30 s
def test_transformers_encoder_equals_the_ct2_computation(ct2, positions):
    from transformers import WhisperModel

    model = WhisperModel(whisper_config(ct2, positions)).eval()
    model.load_state_dict(ct2_to_transformers(ct2, positions), strict=True)
    mel = np.random.default_rng(0).normal(0, 0.5, (80, 2 * positions)).astype(np.float32)
    with torch.no_grad():
        ours = model.encoder(torch.from_numpy(mel)[None]).last_hidden_state[0].numpy()
    reference = numpy_encoder(ct2, mel.astype(np.float64))
    assert ours.shape == (positions, 512)
    assert np.abs(ours - reference).max() < 2e-3 * np.abs(reference).max()


def test_a_missing_part_is_a_clear_error():
    parts, _ = ct2_package_files()
    with pytest.raises(ModelNotFoundError, match="model.bin is truncated or not a CTranslate2 model"):
        read_ct2_model(parts[0].read_bytes())  # part 1 alone
    with pytest.raises(ModelNotFoundError, match="not a WhisperSpec"):
        read_ct2_model(b"\x06\x00\x00\x00\x08\x00garbage\x00")


def test_converted_folder_loads_with_transformers(tmp_path):
    from transformers import WhisperFeatureExtractor, WhisperModel

    from dlhub.whisper_ct2 import convert_whisper_base

    folder = convert_whisper_base(tmp_path / "whisper-base", max_source_positions=50)
    model = WhisperModel.from_pretrained(folder)
    assert model.config.max_source_positions == 50 and model.config.d_model == 512
    extractor = WhisperFeatureExtractor.from_pretrained(folder)
    one_second = np.sin(np.linspace(0, 2000 * np.pi, 16000)).astype(np.float32)
    mel = extractor(one_second, sampling_rate=16000, return_tensors="pt", padding=False).input_features
    assert mel.shape == (1, 80, 100)  # 1 s of audio: 100 frames, 50 encoder positions, no 30 s padding
    with torch.no_grad():
        assert model.encoder(mel).last_hidden_state.shape == (1, 50, 512)
    assert convert_whisper_base(tmp_path / "whisper-base") == folder  # converted once, then reused
