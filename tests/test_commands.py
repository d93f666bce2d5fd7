"""Spoken commands: audio preparation and speech detection, the classifier's contract (12 classes; ten-word models
still load), the bundled model on voices it never heard (espeak-ng), other words and noise, the training script end to
end with a push to and pull from the test Hub."""

import copy
import json
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ACCELERATE_CPU, accelerate_ddp, run_script
from espeak import VOICES, speak, write_wav

import dlhub
from dlhub import audio
from dlhub.commands import (SURE, CommandClassifier, answer, cross_validation_recordings, fold_of,
                            keyword_spotting_report, pool, recordings_report)
from dlhub.data.speech_commands import LABELS, WORDS
from dlhub.errors import DataError


def burst(seconds: float = 2.0, at: float = 0.8, length: float = 0.3, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    x = 0.3 * np.sin(2 * np.pi * 300 * t) * ((t >= at) & (t < at + length))
    return (x + np.random.default_rng(0).normal(0, 1e-3, len(t))).astype(np.float32)


def test_to_mono_float_reads_every_sample_format():
    assert np.allclose(audio.to_mono_float(np.array([0, 16384, -32768], np.int16)), [0, 0.5, -1])
    assert np.allclose(audio.to_mono_float(np.array([128, 255, 0], np.uint8)), [0, 127 / 128, -1])
    assert np.allclose(audio.to_mono_float(np.array([2 ** 30], np.int32)), [0.5])
    stereo = np.stack([np.ones(100), -np.ones(100) * 0.5], 1).astype(np.float32)  # (T, 2)
    assert np.allclose(audio.to_mono_float(stereo), 0.25) and audio.to_mono_float(stereo.T).shape == (100,)
    for bad, message in [(np.array([]), "empty"), (np.array([0.1, np.nan]), "NaN"), (np.array(["a"]), "numbers"),
                         (np.zeros((2, 2, 2)), "shape")]:
        with pytest.raises(DataError, match=message):
            audio.to_mono_float(bad)


def test_resample_and_speech_detection():
    x = burst(rate=44100)
    y = audio.resample(x, 44100)
    assert abs(len(y) - 32000) <= 1
    (start, end), = audio.find_speech(y)
    assert abs(start - 0.8) < 0.03 and abs(end - 1.1) < 0.03
    assert audio.find_speech(np.random.default_rng(0).normal(0, 1e-3, 32000).astype(np.float32)) == []  # -60 dBFS
    assert audio.find_speech(np.zeros(16000, np.float32)) == []
    w = audio.window(y, start, end, 16000)
    assert len(w) == 16000 and np.argmax(np.abs(w)) in range(8000 - 2800, 8000 + 2800)  # the burst in the middle
    with pytest.raises(DataError, match="sampling rate"):
        audio.resample(y, 0)


def test_a_quiet_microphone_is_still_speech_and_a_long_stretch_keeps_its_loudest_second():
    quiet = burst() * 10 ** (-40 / 20) / 0.3  # the word peaks at -40 dBFS, the hiss at -100 dBFS
    (start, end), = audio.find_speech(quiet)
    assert abs(start - 0.8) < 0.03 and abs(end - 1.1) < 0.03
    x = burst(seconds=4.0, at=2.5)  # a stretch of 0.3–3.0 s: faint rumble first, then the word
    x[int(0.3 * 16000):int(2.4 * 16000)] += 0.02 * np.sin(np.arange(int(2.1 * 16000)) * 0.05)
    w = audio.window(x, 0.3, 3.0, 16000)
    loud = np.flatnonzero(np.abs(w) > 0.1)
    assert loud[-1] - loud[0] > 4700 and abs((loud[0] + loud[-1]) / 2 - 8000) < 800  # the whole word, centred


def test_augment_recording_mixes_real_noise_under_the_words():
    rng = np.random.default_rng(0)
    waves = np.stack([burst(seconds=1.0, at=0.35), burst(seconds=1.0, at=0.35) * 0.5,
                      rng.normal(0, 0.1, 16000).astype(np.float32)])
    noises = rng.normal(0, 0.05, (2, 16000)).astype(np.float32)
    out = audio.augment_recording(waves, noises, np.random.default_rng(1), is_noise=np.array([False, False, True]))
    assert out.shape == waves.shape and out.dtype == np.float32 and np.abs(out).max() <= 1
    for speech in out[:2]:  # the noise now fills the silence around the word (5–30 dB under the clip's power)
        blocks = np.mean(speech.reshape(8, 2000) ** 2, axis=1)
        assert 2 < blocks.max() / blocks.min() < 10 ** 4


def test_augment_recording_puts_a_swelling_source_under_half_the_noise_clips():
    rng = np.random.default_rng(0)
    waves = rng.normal(0, 0.1, (200, 16000)).astype(np.float32)
    out = audio.augment_recording(waves, waves[:2], np.random.default_rng(3), is_noise=np.ones(200, bool))
    unclipped = (np.abs(out) >= 1.0).sum(axis=1) < 10
    same = np.array([np.corrcoef(o, w)[0, 1] > 0.999 for o, w in zip(out, waves)])
    assert 0.3 < same[unclipped].mean() < 0.7  # only the microphone's level for half; a second source under the rest
    swell = [np.ptp(audio.frame_dbfs(o)) for o in out[unclipped & ~same]]
    assert np.median(swell) > 6  # the second source rises and falls (white noise alone stays within a few dB)
    for seed in range(5):
        noise = audio.room_noise(16000, np.random.default_rng(seed))
        assert noise.dtype == np.float32 and abs(noise.std() - 1) < 1e-3


def test_augment_recording_sets_noise_under_the_words_frames_and_clips_a_quarter_hard():
    rng = np.random.default_rng(0)
    waves = np.stack([burst(seconds=1.0, at=0.4, length=0.2)] * 200)
    noises = rng.normal(0, 0.05, (3, 16000)).astype(np.float32)
    out = audio.augment_recording(waves, noises, np.random.default_rng(2))
    clipped = (np.abs(out) >= 1.0).sum(axis=1) > 50  # flattened at full scale for many samples
    assert 0.15 < clipped.mean() < 0.35
    levels = 20 * np.log10(np.abs(out[~clipped]).max(axis=1))
    assert levels.min() > -49 and levels.max() <= 0 and levels.min() < -40  # quiet microphones too
    for x in out[~clipped]:  # 5–30 dB between the word's frames (a steady tone) and the noise alone (the first 80 ms)
        over_noise = audio.frame_dbfs(x).max() - 10 * np.log10(np.mean(x[:1280].astype(np.float64) ** 2))
        assert 4 < 10 * np.log10(10 ** (over_noise / 10) - 1) < 31.5


def test_pool_means_over_the_clip_and_maxes_over_the_window():
    states = torch.arange(2 * 1 * 4 * 3, dtype=torch.float32).reshape(2, 1, 4, 3)  # (L + 1, B, T, d)
    features = pool(states, [1], clip_positions=2)
    assert torch.equal(features[0], torch.cat([states[1, 0, :2].mean(0), states[1, 0].amax(0)]))


@pytest.fixture(scope="module")
def bundled():
    return dlhub.load("commands")


def test_bundled_model_contract(bundled):
    assert bundled.labels == LABELS and bundled.encoder_name == "openai/whisper-base"
    x, rate = speak("stop")
    stereo_44k = np.stack([audio.resample(x / 32768, rate, 44100)] * 2, 1)
    out = bundled.predict([x, stereo_44k, burst()], sampling_rate=rate)
    assert len(out) == 3 and all(set(p) == set(LABELS) and abs(sum(p.values()) - 1) < 1e-4 for p in out)
    assert list(out[0].values()) == sorted(out[0].values(), reverse=True)
    with pytest.raises(DataError, match="list of clips"):
        bundled.predict(x, rate)
    assert bundled.predict([], 16000) == []


@pytest.mark.parametrize("voice", VOICES)
def test_bundled_model_recognises_unseen_synthetic_voices(bundled, voice):
    """espeak-ng speakers are nowhere in the training data; allow one miss in ten words per voice."""
    clips = [speak(w, voice) for w in WORDS]
    predicted = [next(iter(p)) for p in bundled.predict([c for c, _ in clips], clips[0][1])]
    assert sum(p == w for p, w in zip(predicted, WORDS)) >= 9, predicted


def test_detect_commands_lists_only_the_commands_in_a_long_recording(bundled):
    parts = [speak(w, voice, silence_s=0.6) for w, voice in (("go", "en-us"), ("hello", "en"), ("left", "en-us"),
                                                             ("yes", "en-us"))]
    recording = np.concatenate([p for p, _ in parts])
    found = bundled.detect_commands(recording, parts[0][1])
    assert [next(iter(d["scores"])) for d in found] == ["go", "left", "yes"]
    assert all(0 <= d["start"] < d["end"] <= len(recording) / parts[0][1] for d in found)
    segments = bundled.classify_segments(recording, parts[0][1])
    assert [next(iter(d["scores"])) for d in segments] == ["go", "unknown", "left", "yes"]
    assert bundled.detect_commands(np.zeros(48000), 48000) == []


def test_a_word_the_energy_detector_misses_under_steady_noise_is_still_heard(bundled):
    """Steady hiss 6 dB under the word: no frame rises 12 dB over the noise floor, so the detector finds no stretch;
    the model then listens to the loudest second itself. Near-silence still gets no detection."""
    word, rate = speak("yes", "en-us", silence_s=1.0)
    word = audio.prepare(word, rate)
    rng = np.random.default_rng(0)
    hiss = rng.standard_normal(len(word)).astype(np.float32)
    loud = audio.frame_dbfs(word) > audio.frame_dbfs(word).max() - 20
    speech_power = np.mean(10 ** (audio.frame_dbfs(word)[loud] / 10))
    noisy = word + hiss * np.sqrt(speech_power / 10 ** (6 / 10))
    assert audio.find_speech(noisy) == []
    (found,) = bundled.classify_segments(noisy, audio.SAMPLING_RATE)
    assert next(iter(found["scores"])) == "yes"
    assert found["end"] - found["start"] == pytest.approx(bundled.clip_s) and found["start"] >= 0
    assert bundled.classify_segments(hiss * 1e-5, audio.SAMPLING_RATE) == []  # -100 dBFS: nothing to listen to


@pytest.mark.parametrize("voice", VOICES)
def test_bundled_model_rejects_other_words_and_noise(bundled, voice):
    """Words that are not commands (espeak-ng voices, never in training) → unknown; noise → silence."""
    others = ["hello", "cat", "seven", "house", "water", "happy"]
    clips = [speak(w, voice)[0] for w in others]
    predicted = [next(iter(p)) for p in bundled.predict(clips, speak("a", voice)[1])]
    assert sum(p not in WORDS for p in predicted) >= len(others) - 1, dict(zip(others, predicted))
    rng = np.random.default_rng(VOICES.index(voice))
    pink = np.fft.irfft(np.fft.rfft(rng.normal(0, 1, 32000)) / np.sqrt(np.arange(1, 16002)))  # 1/f power
    noise = [n / np.abs(n).max() * 0.3 for n in (rng.normal(0, 1, 16000), pink)]
    assert [next(iter(p)) for p in bundled.predict([n.astype(np.float32) for n in noise], 16000)] == ["silence"] * 2


def test_a_ten_word_model_saved_before_the_twelve_classes_still_loads(tmp_path, bundled):
    old = CommandClassifier(layers=bundled.layers, labels=WORDS)
    old.save_pretrained(tmp_path)
    loaded = dlhub.load("commands", tmp_path)
    assert loaded.labels == WORDS
    recording = np.concatenate([speak(w, "en")[0] for w in ("go", "stop")])
    assert set(loaded.predict([recording], 22050)[0]) == set(WORDS)
    assert all(next(iter(d["scores"])) in WORDS for d in loaded.detect_commands(recording, 22050))


def test_keyword_spotting_report():
    names = LABELS
    labels = np.array([0, 1, 10, 10, 11, 11])
    predicted = np.array([0, 2, 10, 3, 11, 10])  # a word wrong, an other word taken for "down", noise → unknown
    report = keyword_spotting_report(np.eye(12)[predicted], labels, names)
    assert report == {"accuracy_all_classes": 3 / 6, "command_accuracy": 1 / 2, "command_clips": 2,
                      "unknown_rejected": 1 / 2, "unknown_clips": 2, "silence_rejected": 1.0, "silence_clips": 2}
    assert set(keyword_spotting_report(np.eye(10)[[0, 1]], np.array([0, 2]), WORDS)) == {
        "accuracy_all_classes", "command_accuracy", "command_clips"}


def heard(**p) -> dict:
    """A stretch of sound as classify_segments gives it: {"scores": {label: p} most likely first}."""
    return {"scores": dict(sorted(p.items(), key=lambda item: -item[1]))}


def test_answer_is_the_tabs_a_command_over_other_sounds_and_unsure_below_sure():
    noise, word, other = heard(silence=0.9, up=0.1), heard(yes=0.8, no=0.2), heard(unknown=0.7, off=0.3)
    assert answer([], []) == (None, "silence")
    assert answer([noise, word], [-10.0, -30.0]) == (1, "yes")  # the command, though the noise was louder
    assert answer([noise, other], [-30.0, -20.0]) == (1, "unknown")  # no command: the loudest
    assert answer([noise, other], [-10.0, -20.0]) == (0, "silence")
    assert answer([heard(go=SURE - 0.01, no=0.2)], [-20.0]) == (0, "unsure:go")
    assert answer([heard(go=0.2, no=0.1), heard(stop=0.6)], [-10.0, -20.0]) == (0, "unsure:go")  # the loudest


def test_fold_of_keeps_each_speaker_in_one_fold_and_deals_them_evenly():
    groups = np.array([f"s{i % 13}" for i in range(100)])
    fold = fold_of(groups, 5, seed=3)
    assert all(len(set(fold[groups == g])) == 1 for g in set(groups))
    assert sorted(np.bincount([fold[groups == g][0] for g in sorted(set(groups))]).tolist()) == [2, 2, 3, 3, 3]
    assert np.array_equal(fold, fold_of(groups, 5, seed=3)) and not np.array_equal(fold, fold_of(groups, 5, seed=4))


def test_recordings_report_scores_each_recording_by_the_tabs_answer():
    names = LABELS
    p = np.full((5, 12), 0.01, np.float32)
    for s, label in enumerate(["yes", "silence", "no", "unknown", "silence"]):
        p[s, names.index(label)] = 0.9
    p[2, names.index("no")] = 0.2  # unsure
    # recordings: 0 (yes; and noise louder), 1 (no, unsure), 2 (cat: unknown), 3 (noise), 4 (noise: nothing heard)
    recordings = {"recording": torch.tensor([0, 0, 1, 2, 3]), "loudness": torch.tensor([-30.0, -10, -20, -20, -20]),
                  "clip": torch.arange(5)}
    labels = np.array([names.index(w) for w in ["yes", "no", "unknown", "silence", "silence"]])
    assert recordings_report(p, recordings, labels, names) == {
        "recording_command_accuracy": 0.5, "recording_command_clips": 2, "recording_unknown_right": 1.0,
        "recording_unknown_clips": 1, "recording_silence_right": 1.0, "recording_silence_clips": 2}
    recordings["synthetic_bed"] = torch.tensor([1, 0, 0, 0, 0])  # a word over a synthetic room's noise: counted
    assert recordings_report(p, recordings, labels, names)["recording_synthetic_beds"] == 1


def test_cross_validation_recordings_hold_each_clip_over_noise_of_its_own_fold(bundled, monkeypatch):
    yes, rate = speak("yes", VOICES[0])
    clips = np.stack([audio.window(audio.resample(yes / 32768.0, rate), 0, 1, 16000),
                      np.random.default_rng(1).normal(0, 0.05, 16000), np.zeros(16000)]).astype(np.float32)
    labels = np.array([LABELS.index("yes"), LABELS.index("silence"), LABELS.index("silence")])
    beds, record = [], audio.user_recording
    monkeypatch.setattr(audio, "user_recording", lambda clip, noise, rng: beds.append(noise) or record(clip, noise, rng))
    recordings = cross_validation_recordings(bundled, clips, labels, np.array([0, 0, 1]), show=False)
    assert [np.array_equal(bed, clips[i]) for bed, i in zip(beds, (1, 1, 2))] == [True] * 3  # its own fold's noise
    assert recordings["synthetic_bed"].tolist() == [0, 0, 0]
    heard = recordings["recording"].tolist()
    assert recordings["clip"].tolist() == [0, 1, 2] and heard == sorted(heard) and 2 not in heard  # silence: nothing
    assert recordings["features"].shape == (len(heard), len(bundled.shifts), bundled.feature_mean.numel())
    bundled.eval()
    with torch.no_grad():
        p = torch.softmax(bundled(recordings["features"]), 1).numpy()
    assert recordings_report(p, recordings, labels, bundled.labels) == {
        "recording_command_accuracy": 1.0, "recording_command_clips": 1, "recording_silence_right": 1.0,
        "recording_silence_clips": 2}


@pytest.fixture(scope="module")
def spoken_folder(tmp_path_factory):
    """Speech Commands layout: the four espeak-ng voices are four speakers, each saying every word and two other words
    (unknown) at 16 kHz, plus noise clips in `_silence_/`."""
    root = tmp_path_factory.mktemp("commands")
    for s, voice in enumerate(VOICES):
        for word in [*WORDS, "cat", "house"]:
            x, rate = speak(word, voice, silence_s=0.1)
            y = audio.window(audio.resample(x / 32768.0, rate), 0, len(x) / rate, 16000)
            (root / word).mkdir(exist_ok=True)
            write_wav(root / word / f"voice{s}00_nohash_0.wav", np.round(y * 32767).astype(np.int16), 16000)
    (root / "_silence_").mkdir()
    rng = np.random.default_rng(0)
    for n in range(8):
        write_wav(root / "_silence_" / f"{n}.wav", rng.normal(0, 300 * (n + 1), 16000).astype(np.int16), 16000)
    return root


@pytest.mark.slow  # a training run through accelerate launch
def test_train_script_saves_pushes_and_pulls(spoken_folder, tmp_path, hub):
    out = tmp_path / "model"
    result = run_script(*ACCELERATE_CPU, "train/commands.py", "--dataset", str(spoken_folder), "--output-dir",
                        str(out), "--cache_dir", str(tmp_path / "cache"), "--epochs", "3", "--augment_copies", "1",
                        "--recording_copies", "1", "--cv_folds", "2", "--hidden", "32", "--layers", "6", "--push_to_hub", "--hub_model_id", "test-org/commands-tiny")
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test_clips"] == 12 + 1 and set(metrics["per_word_accuracy"]) == set(LABELS)  # a speaker + noise
    assert metrics["test_command_clips"] == 10 and metrics["test_unknown_clips"] == 2
    assert metrics["test_silence_clips"] == 1 and 0 <= metrics["test_silence_rejected"] <= 1
    written = {p.name for p in out.iterdir()}
    assert {"training_curves.png", "confusion_matrix.png", "README.md", "config.json"} <= written
    # train and validation: clean, one augment_speech and one augment_recording copy each; test: clean; and each
    # split's clean clips 40 ms earlier and later (what the model hears too when predicting: --shift_test_s)
    # and the cross-validation's recordings of its clips, as users make them
    assert len(list((tmp_path / "cache").rglob("*.safetensors"))) == 7 + 3 * 2 + 1
    cv = metrics["cross_validation"]  # speaker-grouped, over the training and validation speakers
    assert cv["folds"] == 2 and cv["clips"] == metrics["train_clips"] + metrics["val_clips"]
    assert cv["command_clips"] == 10 * cv["speakers"] and 0 <= cv["command_correct"] <= cv["command_clips"]
    assert cv["recording_command_clips"] == cv["command_clips"] and cv["recording_silence_clips"] == cv["silence_clips"]
    assert 0 <= cv["recording_command_accuracy"] <= 1 and 0 <= cv["recording_unknown_right"] <= 1
    # two processes (gloo) share the folds and sum their predictions: the same cross-validation
    two = run_script(*accelerate_ddp(), "train/commands.py", "--dataset", str(spoken_folder), "--output-dir",
                     str(tmp_path / "two"), "--cache_dir", str(tmp_path / "cache"), "--epochs", "3",
                     "--augment_copies", "1", "--recording_copies", "1", "--cv_folds", "2", "--hidden", "32",
                     "--layers", "6", env={"ACCELERATE_USE_CPU": "true"})
    assert two.returncode == 0, two.stderr[-30000:]
    cv_two = json.loads((tmp_path / "two" / "metrics.json").read_text())["cross_validation"]
    same = ("folds", "clips", "speakers", "command_clips", "recording_command_clips", "recording_silence_clips")
    assert {k: cv_two[k] for k in same} == {k: cv[k] for k in same}
    assert abs(cv_two["command_correct"] - cv["command_correct"]) <= 1  # float sums differ across thread counts
    for key in ("recording_command_accuracy", "recording_unknown_right", "recording_silence_right"):
        kind = key.split("_")[1]  # each process answers its folds' recordings; the sum is every recording's answer
        assert abs(cv_two[key] - cv[key]) * cv[f"recording_{kind}_clips"] <= 1, key
    local, pulled = dlhub.load("commands", out), dlhub.load("commands", "test-org/commands-tiny")
    assert pulled.layers == [6] and pulled.encoder_name == "openai/whisper-base"
    x, rate = speak("no")
    assert local.predict([x], rate) == pulled.predict([x], rate)
    for name, tensor in local.state_dict().items():
        assert torch.equal(tensor, pulled.state_dict()[name]), name


def test_train_script_bad_arguments_are_one_line(tmp_path, spoken_folder):
    result = run_script(sys.executable, "train/commands.py", "--dataset", str(tmp_path / "absent"))
    assert result.returncode != 0 and "pass --dataset" in result.stderr and "Traceback" not in result.stderr
    result = run_script(sys.executable, "train/commands.py", "--dataset", str(spoken_folder), "--layers", "9",
                        "--output-dir", str(tmp_path / "o"))
    assert result.returncode != 0 and "hidden states 0–6" in result.stderr and "Traceback" not in result.stderr
    result = run_script(sys.executable, "train/commands.py", "--dataset", str(spoken_folder), "--shift_test_s", "0.6",
                        "--output-dir", str(tmp_path / "o"))
    assert result.returncode != 0 and "--shift_test_s 0.6" in result.stderr and "Traceback" not in result.stderr
    result = run_script(sys.executable, "train/commands.py", "--dataset", str(spoken_folder), "--cv_recordings", "2",
                        "--output-dir", str(tmp_path / "o"))
    assert result.returncode != 0 and "--cv_recordings: invalid choice: 2" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unreachable_encoder_names_the_offline_one():
    from dlhub.commands import SpeechEncoder
    from dlhub.errors import ModelNotFoundError

    with pytest.raises(ModelNotFoundError, match="openai/whisper-base"):
        SpeechEncoder("facebook/wav2vec2-base-960h")


def test_classifier_shapes():
    model = CommandClassifier(layers=(2, 6), hidden=16)
    assert model(torch.zeros(3, 2 * 2 * 512)).shape == (3, 12) and model.labels == LABELS


def test_shift_test_averages_the_window_heard_earlier_and_later():
    x = np.arange(1, 6, dtype=np.float32)[None]
    assert audio.shift(x, 2).tolist() == [[3, 4, 5, 0, 0]] and audio.shift(x, -2).tolist() == [[0, 0, 1, 2, 3]]
    torch.manual_seed(0)
    model = CommandClassifier(clip_s=0.4, pad_s=0.2, layers=(2,), hidden=16, shift_test_s=0.02).eval()
    assert model.shifts == [0, -320, 320] and CommandClassifier().shifts == [0]  # off unless asked for
    clips = np.stack([burst(0.4, at=0.1), burst(0.4, at=0.25, length=0.1)])
    probs = model.probabilities(clips)
    model.shift_test_s = 0.0
    views = [model.probabilities(audio.shift(clips, n)) for n in (0, -320, 320)]
    assert probs.shape == (2, 12) and np.allclose(probs, np.mean(views, 0), atol=1e-5)
    assert not np.allclose(views[0], views[2], atol=1e-4)  # the shifted window is heard, not the same one thrice
    features = torch.randn(2, 3, 2 * 512)  # features of three views: the log of their mean probability
    with torch.no_grad():
        mean = torch.stack([torch.softmax(model(features[:, v]), 1) for v in range(3)]).mean(0)
        assert torch.allclose(torch.softmax(model(features), 1), mean, atol=1e-6)


def test_onnx_runtime_and_pytorch_give_the_same_features(monkeypatch, tmp_path):
    """On the CPU the encoder and pooling run in ONNX Runtime (exported once into the cache); PyTorch, used with
    DLHUB_ONNX=0 or when the export fails, computes the same features. The encoder runs only the layers read."""
    import dlhub.onnx

    monkeypatch.setattr(dlhub.onnx, "CACHE_DIR", tmp_path)  # a fresh export, not one left by an earlier version
    monkeypatch.setattr(dlhub.onnx, "_SESSIONS", OrderedDict())
    model = CommandClassifier(clip_s=0.4, pad_s=0.2, layers=(2, 3), hidden=16)
    assert model.encoder.depth == 3 and len(model.encoder.model.layers) == 3 and model.encoder.num_layers == 6
    clips = torch.from_numpy(np.stack([burst(0.4, at=0.1), burst(0.4, at=0.2, length=0.1)]))
    features = model.features(clips)
    assert [p.name for p in (tmp_path / "onnx").iterdir()] == ["openai--whisper-base_clip0.4_pad0.2_layers2-3-g1.onnx"]
    probs = model.probabilities(clips)  # the whole model as one graph, named by its weights
    assert len(list((tmp_path / "onnx").iterdir())) == 2 and dlhub.onnx.is_loaded(model.graph_name())
    with torch.no_grad():
        model.head[-1].bias[0] += 3.0  # changed weights: a new graph, never a stale one
    changed = model.probabilities(clips)
    assert len(list((tmp_path / "onnx").iterdir())) == 3
    monkeypatch.setenv("DLHUB_ONNX", "0")
    assert np.allclose(model.probabilities(clips), changed, atol=1e-5) and not np.allclose(probs, changed, atol=1e-3)
    reference = model.features(clips)
    assert features.shape == reference.shape == (2, 2 * 2 * 512)
    assert (features - reference).abs().max() <= 1e-4 * reference.abs().max()

    stft = torch.stft(clips, 400, 160, window=torch.hann_window(400), return_complex=True).abs() ** 2
    mel = torch.clamp(model.encoder.mel_filters @ stft[..., :-1], min=1e-10).log10()
    whisper_log_mel = (torch.maximum(mel, mel.amax((1, 2), keepdim=True) - 8) + 4) / 4
    assert torch.allclose(model.encoder.log_mel(clips), whisper_log_mel, atol=1e-4)  # the DFT convolution is Whisper's

    monkeypatch.delenv("DLHUB_ONNX")
    monkeypatch.setattr(dlhub.onnx, "_SESSIONS", OrderedDict())
    monkeypatch.setattr(dlhub.onnx, "CACHE_DIR", tmp_path / "empty")
    monkeypatch.setattr(torch.onnx, "export", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("no exporter")))
    assert torch.equal(model.features(clips), reference)
    model.probabilities(clips)  # in PyTorch: the benchmark's flag must say so
    assert not dlhub.onnx.is_loaded(model.graph_name())


def test_recordings_benchmark_builds_recordings_as_users_make_them():
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    from commands_recordings import answer_of

    make_recording, rng = audio.user_recording, np.random.default_rng(0)
    word, noise = burst(seconds=1.0, at=0.35), rng.normal(0, 0.1, 16000).astype(np.float32)
    for _ in range(10):
        x, rate, facts = make_recording(word, noise, rng)
        assert rate in (44_100, 48_000) and 2.0 <= len(x) / rate <= 5.0 and np.abs(x).max() <= 1.0001
        assert 10 <= facts["snr_db"] <= 30 and facts["level"] in ("normal", "quiet", "clipped")
        if facts["level"] == "quiet":
            assert np.abs(x).max() < 10 ** (-29 / 20)
    x, rate, facts = make_recording(None, noise, rng)
    assert facts["snr_db"] is None
    for _ in range(5):  # the benchmark's control: the same recording from a copy of the draws, no noise, normal level
        twin = copy.deepcopy(rng)
        x, rate, facts = make_recording(word, noise, rng)
        quiet, quiet_rate, quiet_facts = make_recording(word, noise, twin, noisy=False, level="normal")
        assert (quiet_rate, len(quiet), quiet_facts["seconds"]) == (rate, len(x), facts["seconds"])
        assert quiet_facts["snr_db"] is None and quiet_facts["level"] == "normal" and 0.29 < np.abs(quiet).max() < 0.91
        loud = np.abs(quiet) > 0.01  # only the word sounds: its stretch is the clip's loud 0.3 s, not the recording
        assert 0 < np.flatnonzero(loud)[-1] / rate - np.flatnonzero(loud)[0] / rate < 0.5
    with pytest.raises(ValueError, match="one of normal, quiet, clipped"):
        make_recording(word, noise, rng, level="loud")
    assert [answer_of(v) for v in ("### Heard: **stop**\n\nAnswered by", "### Not sure: perhaps **up**",
                                   "### Not a command word\nThat was", "### No command heard\nOnly")] == [
        "stop", "unsure:up", "unknown", "silence"]
