"""Publish the bundled models and the Spaces to one Hub organisation, in one command.

    python -m dlhub.publish --org ORG [--space NAME] [--only REPO ...] [--private] [--dry-run]

What it publishes, each as this checkout has it:

- one model repo per bundled checkpoint, `checkpoints/<folder>/` → `ORG/<name>` (dlhub.tasks.bundled_repo_names: the
  five tasks and the course's Table 3 baseline), its card naming `ORG/<name>` as its own id;
- the Spaces of dlhub.cards.SPACES: the course Space (every tab) as `ORG/NAME` (`--space`, default "dlhub") and one
  Space per task as `ORG/NAME-<task>`. Each holds app.py and README.md (rendered for ORG: its front matter lists the
  organisation's models), requirements.txt, packages.txt, .gitattributes, the `dlhub` package, and the bundled
  checkpoints of its tasks (so it answers before the models are published, and when the Hub cannot be reached);
- each Space's variable DLHUB_ORG=ORG, which points every tab's default model at the organisation.

Each repo's files are staged in memory and compared with what the Hub holds (git blob ids, or the sha256 of LFS
files): a repo gets a commit only when a file is new, changed, or no longer staged (it is then deleted), so a second
run with nothing changed commits nothing. `--dry-run` prints that plan and writes nothing. Files go up through
huggingface_hub's commit API (what upload_folder uses): the Hub's pre-upload answer sends weights and plots to LFS.
`--private` creates new repos private; the Space then needs a read token as its secret HF_TOKEN to load the models.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from dlhub.errors import DLHubError

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = Path(__file__).resolve().parent
DEFAULT_SPACE = "dlhub"  # the course Space's repo name; a task's Space is "<name>-<task>"
ORG_VARIABLE = "DLHUB_ORG"  # read by dlhub.tasks.hub_org: every tab's default model is ORG/<its repo>
# From the repository root into every Space: what Hugging Face installs (pip, apt) and the LFS rules
SPACE_ROOT_FILES = ("requirements.txt", "packages.txt", ".gitattributes")
# Never shipped: bytecode, and the type stubs Gradio writes beside a module that subclasses one of its components
NOT_SHIPPED_SUFFIXES = (".pyc", ".pyi")
REPO_NAME = re.compile(r"[A-Za-z0-9][\w.-]{0,95}", re.ASCII)  # the Hub's rule for a namespace or repo name


class PublishError(DLHubError):
    """Publishing cannot go on: bad input, a bundled folder that is not a model, or a Hub that refused."""


# -- what each repo should hold ----------------------------------------------------------------------------------------
@dataclass
class StagedRepo:
    """A repo as it should be on the Hub: `files` maps each path in the repo to its content (bytes, or a local file
    read when needed)."""

    repo_id: str
    repo_type: str  # "model" or "space"
    files: dict[str, bytes | Path]
    variables: dict[str, str] = field(default_factory=dict)  # a Space's variables

    @property
    def name(self) -> str:
        return self.repo_id.split("/", 1)[1]

    @property
    def label(self) -> str:
        return f"{'Space' if self.repo_type == 'space' else 'model'} {self.repo_id}"


def rewrite_repo_id(text: str, old: str, new: str) -> str:
    """`old` replaced by `new` wherever it stands as a whole repo id: "ORG/face-denoiser" leaves
    "ORG/face-denoiser-mlp" alone, and a full stop after the id still ends the sentence."""
    return re.sub(rf"(?<![\w.-]){re.escape(old)}(?![\w-]|\.\w)", new, text)


def shipped_files(folder: Path) -> list[Path]:
    """The files under `folder` that a repo gets: no hidden files, no __pycache__, no .pyc / .pyi."""
    return sorted(p for p in folder.rglob("*") if p.is_file()
                  and not any(part.startswith(".") or part == "__pycache__" for part in p.relative_to(folder).parts)
                  and p.suffix not in NOT_SHIPPED_SUFFIXES)


def bundled_model_files(folder_name: str, org: str) -> dict[str, bytes | Path]:
    """The bundled checkpoint `folder_name` as its repo in `org` holds it: its card names ORG/<name> as its own id and
    passes check_card."""
    from huggingface_hub import ModelCard

    from dlhub.cards import check_card
    from dlhub.tasks import BUNDLED_DIR, bundled_repo_names

    folder = BUNDLED_DIR / folder_name
    for needed in ("model.safetensors", "config.json", "README.md"):
        if not (folder / needed).is_file():
            raise PublishError(f"{folder} has no {needed}: train the model again (or restore the folder) first")
    card = (folder / "README.md").read_text()
    own_id = getattr(ModelCard(card).data, "model_name", None)
    if not isinstance(own_id, str) or "/" not in own_id:
        raise PublishError(f"{folder}/README.md names no repo of its own (model_name / model-index name)")
    repo_id = f"{org}/{bundled_repo_names()[folder_name]}"
    card = rewrite_repo_id(card, own_id, repo_id)
    try:
        check_card(card)
    except DLHubError as err:
        raise PublishError(f"{folder}/README.md: {err}") from None
    files: dict[str, bytes | Path] = {p.relative_to(folder).as_posix(): p for p in shipped_files(folder)}
    files["README.md"] = card.encode()
    return files


def bundled_task(folder_name: str) -> str:
    """The task a bundled folder serves: its own name, or a baseline's task."""
    from dlhub.tasks import BASELINES, TASKS

    return folder_name if folder_name in TASKS else BASELINES[folder_name][0]


def space_repo_name(space: str, course_space: str) -> str:
    """The repo name of the Space `space` of dlhub.cards.SPACES: the course Space is `course_space`, a task's Space
    `course_space-<task>`."""
    from dlhub.cards import SPACES

    return course_space if SPACES[space].tasks is None else f"{course_space}-{space}"


def staged_repos(org: str, course_space: str) -> list[StagedRepo]:
    """Every repo to publish in `org`: a model repo per bundled checkpoint, then a Space per entry of
    dlhub.cards.SPACES with the checkpoints its tabs fall back on."""
    from dlhub.cards import SPACES, render_space_card, space_app
    from dlhub.tasks import TASKS, bundled_repo_names

    root_files = {name: ROOT / name for name in SPACE_ROOT_FILES}
    missing = [name for name, path in root_files.items() if not path.is_file()]
    if missing:
        raise PublishError(f"{', '.join(missing)} missing from {ROOT}: run dlhub.publish from a full checkout")
    checkpoints = {folder: bundled_model_files(folder, org) for folder in bundled_repo_names()}
    gitattributes = root_files[".gitattributes"]
    staged = [StagedRepo(f"{org}/{name}", "model", {**checkpoints[folder], ".gitattributes": gitattributes})
              for folder, name in bundled_repo_names().items()]
    package = {f"dlhub/{p.relative_to(PACKAGE).as_posix()}": p for p in shipped_files(PACKAGE)}
    for space, card in SPACES.items():
        tasks = set(card.tasks or TASKS)
        files: dict[str, bytes | Path] = {"README.md": render_space_card(space, org).encode(),
                                          "app.py": space_app(space).encode(), **root_files, **package}
        for folder, folder_files in checkpoints.items():
            if bundled_task(folder) in tasks:
                files.update({f"checkpoints/{folder}/{path}": content for path, content in folder_files.items()})
        staged.append(StagedRepo(f"{org}/{space_repo_name(space, course_space)}", "space", files,
                                 variables={ORG_VARIABLE: org}))
    return staged


# -- what the Hub holds, and what would change -------------------------------------------------------------------------
@dataclass
class RemoteRepo:
    sha: str
    private: bool
    files: dict[str, tuple[str, str | None]]  # path → (git blob id, sha256 when stored in LFS)


@dataclass
class Plan:
    """What publishing a staged repo changes on the Hub: the files new, changed and deleted against `remote` (the repo
    as the Hub holds it; None while it does not exist), and the Space variables to set (their new values)."""

    staged: StagedRepo
    remote: RemoteRepo | None
    new: list[str]
    changed: list[str]
    deleted: list[str]
    variables: dict[str, str]
    creates: bool = False  # the repo did not exist
    commit: str | None = None  # the commit made, once published

    @property
    def files_differ(self) -> bool:
        return bool(self.new or self.changed or self.deleted)


def content_of(source: bytes | Path) -> bytes:
    return source if isinstance(source, bytes) else source.read_bytes()


def same_content(content: bytes, remote: tuple[str, str | None]) -> bool:
    blob_id, lfs_sha256 = remote
    if lfs_sha256 is not None:
        return hashlib.sha256(content).hexdigest() == lfs_sha256
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest() == blob_id  # git's blob id


@contextmanager
def hub_errors(what: str):
    """Any failure of a Hub request becomes one PublishError naming what was being done."""
    import httpx2
    from huggingface_hub import constants
    from huggingface_hub.errors import HfHubHTTPError, LocalTokenNotFoundError

    try:
        yield
    except LocalTokenNotFoundError:
        raise PublishError(f"{what}: no Hub token; log in (`hf auth login`) or set HF_TOKEN to a token that may "
                           "write to the organisation") from None
    except HfHubHTTPError as err:
        status = err.response.status_code if err.response is not None else "?"
        hint = {401: ": log in (`hf auth login`) or set HF_TOKEN", 403: ": this token may not write there",
                409: ": it exists, but this token cannot see it (a private repo of someone else?)",
                412: ": the repo changed meanwhile, run again"}.get(status, "")
        raise PublishError(f"{what}: the Hub answered {status} ({str(err).splitlines()[0]}){hint}") from None
    except httpx2.HTTPError as err:
        raise PublishError(f"{what}: could not reach the Hub at {constants.ENDPOINT} ({type(err).__name__}); "
                           "set HF_ENDPOINT or try again") from None


def remote_repo(api, staged: StagedRepo) -> RemoteRepo | None:
    """The repo as the Hub holds it on main, or None when it does not exist (or this token cannot see it)."""
    from huggingface_hub import RepoFile
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    with hub_errors(f"reading {staged.label}"):
        try:
            info = api.repo_info(staged.repo_id, repo_type=staged.repo_type)
        except RepositoryNotFoundError:
            return None
        try:
            tree = list(api.list_repo_tree(staged.repo_id, repo_type=staged.repo_type, recursive=True))
        except RevisionNotFoundError:  # a repo without a commit yet
            tree = []
    files = {entry.path: (entry.blob_id, entry.lfs.sha256 if entry.lfs else None)
             for entry in tree if isinstance(entry, RepoFile)}
    return RemoteRepo(info.sha, bool(info.private), files)


def plan_repo(api, staged: StagedRepo) -> Plan:
    remote = remote_repo(api, staged)
    if remote is None:
        return Plan(staged, None, sorted(staged.files), [], [], dict(staged.variables), creates=True)
    new = sorted(p for p in staged.files if p not in remote.files)
    changed = sorted(p for p in staged.files if p in remote.files
                     and not same_content(content_of(staged.files[p]), remote.files[p]))
    deleted = sorted(p for p in remote.files if p not in staged.files)
    variables = {}
    if staged.variables:
        with hub_errors(f"reading the variables of {staged.label}"):
            current = api.get_space_variables(staged.repo_id)
        variables = {k: v for k, v in staged.variables.items() if k not in current or current[k].value != v}
    return Plan(staged, remote, new, changed, deleted, variables)


# -- publishing --------------------------------------------------------------------------------------------------------
def commit_files(api, plan: Plan, *, private: bool) -> None:
    """Create the repo when needed, then commit the plan's new and changed files and its deletions in one commit."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    staged = plan.staged
    if plan.remote is None:
        with hub_errors(f"creating {staged.label}"):
            api.create_repo(staged.repo_id, repo_type=staged.repo_type, private=private,
                            space_sdk="gradio" if staged.repo_type == "space" else None)
        # the Hub starts a repo with files of its own (.gitattributes): the plan is made again against them
        fresh = plan_repo(api, staged)
        plan.remote, plan.new, plan.changed, plan.deleted = fresh.remote, fresh.new, fresh.changed, fresh.deleted
    if not plan.files_differ:
        return
    operations = [CommitOperationAdd(path, content if isinstance(content, bytes) else str(content))
                  for path, content in ((p, staged.files[p]) for p in plan.new + plan.changed)]
    operations += [CommitOperationDelete(path) for path in plan.deleted]
    what = "the bundled model" if staged.repo_type == "model" else "the Space"
    with hub_errors(f"committing to {staged.label}"):
        info = api.create_commit(staged.repo_id, operations, repo_type=staged.repo_type,
                                 commit_message=f"Publish {what} with dlhub.publish",
                                 commit_description=describe_changes(plan), parent_commit=plan.remote.sha)
    plan.commit = info.oid


def set_variables(api, plan: Plan) -> None:
    for key, value in plan.variables.items():
        with hub_errors(f"setting the variable {key} of {plan.staged.label}"):
            api.add_space_variable(plan.staged.repo_id, key, value,
                                   description="The Hub organisation of every tab's default model (dlhub.publish)")


def describe_changes(plan: Plan, shown: int = 3) -> str:
    """"README.md changed; 2 new (a.py, b.py)": the files a commit adds, changes and deletes, a few named."""
    def some(kind: str, paths: list[str]) -> str:
        if len(paths) == 1:
            return f"{paths[0]} {kind}"
        more = f", … {len(paths) - shown} more" if len(paths) > shown else ""
        return f"{len(paths)} {kind} ({', '.join(paths[:shown])}{more})"

    parts = [some(kind, paths) for kind, paths in
             (("new", plan.new), ("changed", plan.changed), ("deleted", plan.deleted)) if paths]
    return "; ".join(parts) or "no file changed"


def plan_line(plan: Plan, dry_run: bool) -> str:
    """One line per repo: what was (or would be) done to its files, then to each of its variables."""
    commit = f" → commit {plan.commit[:7]}" if plan.commit else ""
    if plan.creates:
        done = f"{'to be created' if dry_run else 'created'} with {len(plan.staged.files)} files{commit}"
    elif plan.files_differ:
        done = f"{'to be updated' if dry_run else 'updated'}: {describe_changes(plan)}{commit}"
    else:
        done = "unchanged"
    for key, value in plan.staged.variables.items():
        state = ("to be set" if dry_run else "set") if key in plan.variables else "unchanged"
        done += f"; variable {key}={value} {state}"
    return f"  {plan.staged.label:<36} {done}"


def publish(org: str, *, course_space: str = DEFAULT_SPACE, only: list[str] | None = None, private: bool = False,
            dry_run: bool = False, api=None, out=print) -> list[Plan]:
    """Publish (or, with dry_run, only plan) every bundled model repo and every Space to `org`; `only` limits it to
    those repo names. Returns each repo's plan, with the commit made."""
    from huggingface_hub import HfApi, constants

    check_name(org, "--org", "an organisation (or user) name")
    check_name(course_space, "--space", "a Space name")
    api = api or HfApi()
    staged = staged_repos(org, course_space)
    if only:
        names = [s.name for s in staged]
        unknown = [n for n in only if n not in names]
        if unknown:
            raise PublishError(f"--only {' '.join(unknown)}: not a repo this publishes; choose from {', '.join(names)}")
        staged = [s for s in staged if s.name in only]
    if not dry_run:
        with hub_errors("checking the token"):
            api.whoami()
    out(f"Dry run: what publishing to {org} on {constants.ENDPOINT} would change (nothing is written):" if dry_run
        else f"Publishing to {org} on {constants.ENDPOINT}:")
    plans = []
    for repo in staged:
        plan = plan_repo(api, repo)
        if not dry_run:
            if plan.remote is not None and private and not plan.remote.private:
                out(f"  note: {repo.label} exists and is public: --private makes only new repos private")
            commit_files(api, plan, private=private)
            set_variables(api, plan)
        out(plan_line(plan, dry_run))
        plans.append(plan)
    out(summary(plans, dry_run, private))
    return plans


def summary(plans: list[Plan], dry_run: bool, private: bool) -> str:
    created = sum(p.creates for p in plans)
    updated = sum(not p.creates and p.files_differ for p in plans)
    unchanged = len(plans) - created - updated
    variables = sum(len(p.variables) for p in plans)
    repos, variables = f"{created} repo{'s' * (created != 1)}", f"{variables} Space variable{'s' * (variables != 1)}"
    if dry_run:
        return (f"Would create {repos}, update {updated}, leave {unchanged} unchanged, and set {variables}. Nothing "
                "was written: run without --dry-run to publish.")
    text = f"Done: {repos} created, {updated} updated, {unchanged} unchanged; {variables} set."
    if private:
        text += "\nThe repos are private: give each Space a read token as its secret HF_TOKEN to load the models."
    return text


def check_name(value: str, flag: str, what: str) -> None:
    if not REPO_NAME.fullmatch(value or "") or ".." in value or value.endswith((".", "-")):
        raise PublishError(f"{flag} {value!r} is not {what} the Hub accepts: letters, digits, '-', '_' and '.', "
                           "at most 96 characters, with no '/'")


# -- entry point -------------------------------------------------------------------------------------------------------
def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m dlhub.publish", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Create or update the bundled models' repos and the Spaces in a Hub organisation; a second run "
                    "with nothing changed commits nothing.",
        epilog=f"Spaces: the course Space is ORG/NAME (--space, default {DEFAULT_SPACE}); each task's Space is "
               "ORG/NAME-<task>. Each Space gets the variable DLHUB_ORG=ORG. Token: HF_TOKEN or `hf auth login`.")
    parser.add_argument("--org", required=True, help="the organisation (or user) to publish to")
    parser.add_argument("--space", default=DEFAULT_SPACE, help=f"the course Space's repo name (default: "
                                                                 f"{DEFAULT_SPACE})")
    parser.add_argument("--only", nargs="+", metavar="REPO", help="publish only these repos (names without ORG/, as "
                                                                   "the plan lists them)")
    parser.add_argument("--private", action="store_true", help="create new repos as private")
    parser.add_argument("--dry-run", "--dry_run", dest="dry_run", action="store_true",
                        help="list what would change, write nothing")
    return parser.parse_args(argv)


def main(argv=None) -> list[Plan]:
    from huggingface_hub.utils import disable_progress_bars

    args = parse_args(argv)
    disable_progress_bars()  # a bar per uploaded file would bury the plan; each repo's line follows its commit
    return publish(args.org, course_space=args.space, only=args.only, private=args.private, dry_run=args.dry_run,
                   out=lambda line: print(line, flush=True))


if __name__ == "__main__":
    from dlhub.cli import one_line_errors

    with one_line_errors("dlhub.publish"):
        main(sys.argv[1:])
