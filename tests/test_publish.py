"""`python -m dlhub.publish --org ORG` on the test Hub: every bundled model and every Space, created or updated in one
command; a second run commits nothing; the weights go up as LFS; and the published Space, started from a fresh
download of its repo the way Hugging Face starts it, answers with the organisation's models."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, space_tracebacks, start_space
from huggingface_hub import HfApi, snapshot_download

import dlhub
from dlhub import publish
from dlhub.cards import SPACES, space_app
from dlhub.errors import HubRepoNotFoundError
from dlhub.tasks import BASELINES, BUNDLED_DIR, TASKS, bundled_repo_names

ORG = "testorg"
MODEL_NAMES = sorted(bundled_repo_names().values())
SPACE_NAMES = sorted(publish.space_repo_name(space, publish.DEFAULT_SPACE) for space in SPACES)


def hub_repo(hub, repo_type: str, repo_id: str):
    return hub.state.repos.get((repo_type, repo_id))


def writes(requests: list[str]) -> list[str]:
    """The requests that may change something (every read is a GET or HEAD)."""
    return [r for r in requests if not r.startswith(("GET ", "HEAD "))]


def published_state(hub, org: str) -> dict:
    """Each of the org's repos → (its commits' shas, its Space variables' values)."""
    return {(kind, repo_id): ([sha for sha, _ in repo.commits], {k: v["value"] for k, v in repo.variables.items()})
            for (kind, repo_id), repo in hub.state.repos.items() if repo_id.startswith(f"{org}/")}


@pytest.fixture(scope="module")
def published(hub):
    """Everything published to ORG once, by the command line's own entry point."""
    return publish.main(["--org", ORG])


def test_a_repo_id_is_rewritten_only_where_it_stands_whole():
    text = ("dlhub.load('denoiser', 'dlhub-course/face-denoiser'); the baseline is dlhub-course/face-denoiser-mlp; "
            "see dlhub-course/face-denoiser. Code: github.com/dlhub-course/dlhub, mirror x-dlhub-course/face-denoiser")
    assert publish.rewrite_repo_id(text, "dlhub-course/face-denoiser", "org/face-denoiser") == (
        "dlhub.load('denoiser', 'org/face-denoiser'); the baseline is dlhub-course/face-denoiser-mlp; "
        "see org/face-denoiser. Code: github.com/dlhub-course/dlhub, mirror x-dlhub-course/face-denoiser")


def test_dry_run_on_an_empty_hub_lists_every_repo_and_writes_nothing(hub, capsys):
    asked_before = len(hub.state.requests)
    plans = publish.main(["--org", "dryorg", "--dry-run"])
    out = capsys.readouterr().out
    asked = hub.state.requests[asked_before:]
    assert asked and not writes(asked), writes(asked)
    assert not [key for key in hub.state.repos if key[1].startswith("dryorg/")]
    assert sorted(p.staged.name for p in plans) == sorted(MODEL_NAMES + SPACE_NAMES)
    for name in MODEL_NAMES:
        assert f"model dryorg/{name} " in out
    for name in SPACE_NAMES:
        line = next(line for line in out.splitlines() if f"Space dryorg/{name} " in line)
        assert "to be created" in line and "variable DLHUB_ORG=dryorg to be set" in line, line
    assert all(p.creates and p.commit is None for p in plans)
    assert "Would create 12 repos, update 0, leave 0 unchanged, and set 6 Space variables." in out


def test_every_model_repo_holds_its_bundled_folder_with_its_card_naming_the_org(published, hub):
    assert {p.staged.repo_id: p.creates for p in published if p.staged.repo_type == "model"} == \
        {f"{ORG}/{name}": True for name in MODEL_NAMES}
    gitattributes = (ROOT / ".gitattributes").read_bytes()
    for folder, name in bundled_repo_names().items():
        _, files = hub_repo(hub, "model", f"{ORG}/{name}").commits[-1]
        bundled = {p.name for p in (BUNDLED_DIR / folder).iterdir() if p.is_file()}
        assert set(files) == bundled | {".gitattributes"}
        assert files[".gitattributes"] == gitattributes
        assert files["model.safetensors"] == (BUNDLED_DIR / folder / "model.safetensors").read_bytes()
        card = files["README.md"].decode()
        assert yaml.safe_load(card.split("---")[1])["model-index"][0]["name"] == f"{ORG}/{name}"
        assert f'"{ORG}/{name}")' in card  # the usage snippet
        assert f"dlhub-course/{name}" not in card.replace(f"dlhub-course/{name}-", "")
        assert "github.com/dlhub-course/dlhub" in card  # a link that is no model repo stays


def test_each_space_is_the_app_its_card_and_the_checkpoints_of_its_tasks(published, hub):
    import gradio

    api = HfApi()
    for space, card in SPACES.items():
        repo_id = f"{ORG}/{publish.space_repo_name(space, publish.DEFAULT_SPACE)}"
        repo = hub_repo(hub, "space", repo_id)
        _, files = repo.commits[-1]
        assert files["app.py"].decode() == space_app(space)
        front = yaml.safe_load(files["README.md"].decode().split("---")[1])
        assert front["sdk"] == "gradio" and front["sdk_version"] == gradio.__version__
        tasks = card.tasks or tuple(TASKS)
        expected_models = [f"{ORG}/{TASKS[t].hub_name}" for t in tasks] + \
            [f"{ORG}/{repo_name}" for task, repo_name in BASELINES.values() if task in tasks]
        assert front["models"] == expected_models
        assert api.space_info(repo_id).sdk == "gradio"
        assert {k: v.value for k, v in api.get_space_variables(repo_id).items()} == {"DLHUB_ORG": ORG}
        for name in ("requirements.txt", "packages.txt", ".gitattributes"):
            assert files[name] == (ROOT / name).read_bytes(), name
        assert "dlhub/space/__init__.py" in files and "dlhub/metrics/psnr/psnr.py" in files
        assert not [p for p in files if "__pycache__" in p or p.endswith((".pyc", ".pyi"))]
        folders = {p.split("/")[1] for p in files if p.startswith("checkpoints/")}
        assert folders == {f for f in bundled_repo_names() if publish.bundled_task(f) in tasks}, space
        for folder in folders:  # the bundled copies' cards link to the org's repos too (the Models tab shows them)
            own = bundled_repo_names()[folder]
            assert f"- name: {ORG}/{own}\n" in files[f"checkpoints/{folder}/README.md"].decode()


def test_a_second_run_commits_nothing(published, hub, capsys):
    before = published_state(hub, ORG)
    asked_before = len(hub.state.requests)
    plans = publish.main(["--org", ORG])
    out = capsys.readouterr().out
    assert published_state(hub, ORG) == before
    asked = hub.state.requests[asked_before:]
    assert not writes(asked), writes(asked)
    assert all(not p.files_differ and not p.variables and p.commit is None for p in plans)
    repo_lines = [line for line in out.splitlines() if line.startswith(("  model ", "  Space "))]
    assert len(repo_lines) == 12 and all(line.endswith(" unchanged") for line in repo_lines), out
    assert "Done: 0 repos created, 0 updated, 12 unchanged; 0 Space variables set." in out


def test_the_landmarks_weights_went_up_as_lfs(published, hub):
    weights = BUNDLED_DIR / "landmarks" / "model.safetensors"
    assert weights.stat().st_size > 10 * 1024 * 1024  # over the Hub's limit for a file sent inline
    sha256 = hashlib.sha256(weights.read_bytes()).hexdigest()
    assert f"PUT /lfs-upload/{sha256}" in hub.state.requests
    for repo_id, path, repo_type in [(f"{ORG}/face-landmarks", "model.safetensors", "model"),
                                     (f"{ORG}/dlhub", "checkpoints/landmarks/model.safetensors", "space")]:
        (entry,) = HfApi().get_paths_info(repo_id, [path], repo_type=repo_type)
        assert entry.lfs is not None and entry.lfs.sha256 == sha256, (repo_id, entry)


def test_gitattributes_sends_every_binary_file_published_to_lfs(published):
    """For a git push: each file that git would store as binary, or that is over 10 MiB, has an LFS rule."""
    shipped = {path: content for plan in published for path, content in plan.staged.files.items()}
    binary = sorted(path for path, content in shipped.items()
                    if b"\0" in publish.content_of(content)[:8000] or len(publish.content_of(content)) >= 10 << 20)
    assert any(p.endswith(".safetensors") for p in binary) and any(p.endswith(".png") for p in binary)
    checked = subprocess.run(["git", "check-attr", "--stdin", "filter"], cwd=ROOT, input="\n".join(binary),
                             capture_output=True, text=True, check=True).stdout.splitlines()
    assert [line for line in checked if not line.endswith(": filter: lfs")] == []
    text_files = [p for p in shipped if p.endswith((".py", ".md", ".json", ".txt"))]
    checked = subprocess.run(["git", "check-attr", "--stdin", "filter"], cwd=ROOT, input="\n".join(text_files),
                             capture_output=True, text=True, check=True).stdout.splitlines()
    assert all(line.endswith(": filter: unspecified") for line in checked)


def test_a_changed_checkpoint_is_one_commit_with_its_changes_and_deletions(hub, tmp_path, monkeypatch, capsys):
    """Publish one model, then change its bundled folder: the next run commits the changed file and deletes the one
    that is gone, and the run after it commits nothing."""
    import dlhub.tasks

    publish.publish("updateorg", only=["task1-regression"], out=lambda line: None)
    repo = hub_repo(hub, "model", "updateorg/task1-regression")
    commits = len(repo.commits)
    bundled = tmp_path / "checkpoints"
    bundled.mkdir()
    for folder in bundled_repo_names():
        (bundled / folder).symlink_to(BUNDLED_DIR / folder)
    (bundled / "regression").unlink()
    shutil.copytree(BUNDLED_DIR / "regression", bundled / "regression")
    metrics = json.loads((bundled / "regression" / "metrics.json").read_text())
    (bundled / "regression" / "metrics.json").write_text(json.dumps({**metrics, "note": "retrained"}))
    gone = sorted(p.name for p in (bundled / "regression").glob("*.png"))[0]
    (bundled / "regression" / gone).unlink()
    monkeypatch.setattr(dlhub.tasks, "BUNDLED_DIR", bundled)

    (plan,) = publish.main(["--org", "updateorg", "--only", "task1-regression", "--dry-run"])
    assert (plan.new, plan.changed, plan.deleted) == ([], ["metrics.json"], [gone])
    assert len(repo.commits) == commits
    assert f"to be updated: metrics.json changed; {gone} deleted" in capsys.readouterr().out
    (plan,) = publish.main(["--org", "updateorg", "--only", "task1-regression"])
    assert len(repo.commits) == commits + 1 and plan.commit == repo.commits[-1][0]
    files = repo.commits[-1][1]
    assert gone not in files and json.loads(files["metrics.json"])["note"] == "retrained"
    (plan,) = publish.main(["--org", "updateorg", "--only", "task1-regression"])
    assert plan.commit is None and len(repo.commits) == commits + 1


def test_private_models_load_with_a_token_only(hub, monkeypatch, capsys):
    plans = publish.main(["--org", "privateorg", "--only", "gtsrb-signs", "--private"])
    assert "give each Space a read token as its secret HF_TOKEN" in capsys.readouterr().out
    assert [p.staged.repo_id for p in plans] == ["privateorg/gtsrb-signs"]
    assert hub_repo(hub, "model", "privateorg/gtsrb-signs").private
    model = dlhub.load("signs", "privateorg/gtsrb-signs")
    assert model.origin.repo_id == "privateorg/gtsrb-signs"
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(HubRepoNotFoundError, match="private"):
        dlhub.load("signs", "privateorg/gtsrb-signs@main")


@pytest.mark.parametrize("argv, message", [
    (["--org", "a/b"], "--org 'a/b' is not an organisation (or user) name the Hub accepts"),
    (["--org", ORG, "--space", "my space"], "--space 'my space' is not a Space name the Hub accepts"),
    (["--org", ORG, "--only", "nope"], "--only nope: not a repo this publishes; choose from task1-regression"),
])
def test_bad_input_is_one_line(argv, message):
    done = subprocess.run([sys.executable, "-m", "dlhub.publish", *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith(f"dlhub.publish: error: {message}") and done.stderr.count("\n") == 1, done.stderr


def test_no_token_is_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "dlhub.publish", "--org", ORG, "--only", "gtsrb-signs"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120,
                          env={**{k: v for k, v in os.environ.items() if k != "HF_TOKEN"}, "HF_HOME": str(tmp_path)})
    assert done.returncode == 2 and done.stderr == (
        "dlhub.publish: error: checking the token: no Hub token; log in (`hf auth login`) or set HF_TOKEN to a token "
        "that may write to the organisation\n"), done.stderr


# -- the published Space, started from a fresh download of its repo ----------------------------------------------------
@pytest.mark.slow
def test_the_published_space_answers_with_the_orgs_models(published, hf_spaces_package, tmp_path, monkeypatch):
    """The course Space's repo, downloaded fresh and started as Hugging Face starts it (SYSTEM=spaces, SPACE_ID, its
    variables as environment variables, Hugging Face's `spaces` package importable): its signs tab answers with
    ORG's model from the Hub, and its Models tab lists the bundled copy that came with the Space (found beside the
    Space's own `dlhub`, not this checkout's)."""
    from gradio_client import Client, handle_file

    from dlhub.sign_drawings import draw_sign

    repo_id = f"{ORG}/{publish.DEFAULT_SPACE}"
    folder = Path(snapshot_download(repo_id, repo_type="space", local_dir=tmp_path / "space"))
    assert (folder / "app.py").read_text() == space_app("course")
    variables = {k: v.value for k, v in HfApi().get_space_variables(repo_id).items()}
    for name in ("DLHUB_ORG", "DLHUB_CHECKPOINTS", *[f"DLHUB_REPO_{t.upper()}" for t in TASKS]):
        monkeypatch.delenv(name, raising=False)  # only the Space's own variables say where its models are
    env = {"SYSTEM": "spaces", "SPACE_ID": repo_id, "PYTHONPATH": str(hf_spaces_package), **variables}
    sign = tmp_path / "stop.png"
    draw_sign(14, 96, seed=1).save(sign)
    log = tmp_path / "space.log"
    proc, url, _ = start_space(log, env, folder=folder)
    try:
        client = Client(url, verbose=False)
        *_, note = client.predict(handle_file(str(sign)), api_name="/classify_sign")
        assert f"Answered by `{ORG}/gtsrb-signs` at commit" in note, note
        table, _ = client.predict("signs", "main metric", api_name="/list_models")
        rows = [dict(zip(table["headers"], row)) for row in table["data"]]
        (bundled,) = [row for row in rows if row["from"] == "bundled"]
        assert f"(https://huggingface.co/{ORG}/gtsrb-signs)" in bundled["card"], rows
        assert f"{ORG}/gtsrb-signs" in [row["model"] for row in rows if row["from"] == "Hub"]
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert not space_tracebacks(log), space_tracebacks(log)[-3000:]


@pytest.mark.slow
def test_every_published_model_loads_from_the_org(published):
    for folder, name in bundled_repo_names().items():
        task = publish.bundled_task(folder)
        model = dlhub.load(task, f"{ORG}/{name}")
        assert (model.origin.kind, model.origin.repo_id) == ("hub", f"{ORG}/{name}")
        assert (model.folder / "model.safetensors").read_bytes() == \
            (BUNDLED_DIR / folder / "model.safetensors").read_bytes()
