"""A small Hugging Face Hub–compatible HTTP server for tests, on 127.0.0.1, keeping repos in memory.

It implements what huggingface_hub's create_repo, upload_folder/upload_file, create_commit, delete_file,
model_info/space_info/repo_info, list_repo_files, list_repo_tree, file_exists, hf_hub_download and snapshot_download
ask of the Hub (see shared/notes/hub-protocol.md), for models, datasets and Spaces (created with their `sdk`, with
variables: get_space_variables, add_space_variable, delete_space_variable). Every commit is kept, so downloads by
commit sha work. A private repo answers only a request that carries a token (any token), as the Hub answers an
anonymous one: 401 RepoNotFound. A commit with `?create_pr=1` opens pull request N on its own ref `refs/pr/N` (main
untouched), as the Hub does; a commit whose parentCommit is no longer its branch's head is refused (412). Binary files
go through the basic LFS protocol (batch + PUT), and a file of 10 MiB or more sent inline is refused, as by the Hub;
Xet is not spoken, so clients run with HF_HUB_DISABLE_XET=1.

    python tests/hub_server.py --port 8765      # then HF_ENDPOINT=http://127.0.0.1:8765 HF_TOKEN=hf_local ...
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import math
import re
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlparse

TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
# Like the Hub's default .gitattributes: these go through LFS (the client must then speak the LFS batch API)
LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".parquet", ".arrow", ".npz", ".npy", ".png", ".jpg", ".zip")
LFS_MIN_SIZE = 10 * 1024 * 1024


def is_lfs(path: str, size: int) -> bool:
    return path.endswith(LFS_SUFFIXES) or size >= LFS_MIN_SIZE
PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}


@dataclass
class Repo:
    repo_type: str
    private: bool = False
    sdk: str | None = None  # a Space's
    variables: dict[str, dict] = field(default_factory=dict)  # a Space's: key → {"value", "description", "updatedAt"}
    commits: list[tuple[str, dict[str, bytes]]] = field(default_factory=list)  # (sha, files), oldest first
    # pull requests: "refs/pr/N" → its commits, oldest first (main's history stays in `commits`)
    refs: dict[str, list[tuple[str, dict[str, bytes]]]] = field(default_factory=dict)

    def files_at(self, revision: str) -> tuple[str, dict[str, bytes]] | None:
        if not self.commits:
            return None
        if revision in ("main", "HEAD", None):
            return self.commits[-1]
        if revision in self.refs:
            return self.refs[revision][-1]
        every = self.commits + [c for commits in self.refs.values() for c in commits]
        return next(((sha, f) for sha, f in every if sha == revision), None)


class HubState:
    def __init__(self):
        self.repos: dict[tuple[str, str], Repo] = {}  # (type, "org/name")
        self.lock = threading.Lock()
        self.requests: list[str] = []  # "METHOD path", for tests that check what was asked
        self.lfs: dict[str, bytes] = {}  # sha256 → content, uploaded through the LFS batch API


def _blob_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()  # git's blob id


def _card_data(files: dict[str, bytes]) -> dict | None:
    """The YAML header of the repo's README.md, as the Hub serves it in `cardData`."""
    import yaml

    match = re.match(r"^---[ \t]*\n(.*?)\n---[ \t]*(?:\n|$)", files.get("README.md", b"").decode("utf-8", "replace"), re.S)
    try:
        data = yaml.safe_load(match.group(1)) if match else None
    except yaml.YAMLError:
        return None
    return data if isinstance(data, dict) else None


def _tags(card: dict | None) -> list[str]:
    """The repo's tags as the Hub derives them: the card's own, its library and its licence."""
    card = card or {}
    tags = [str(t) for t in card.get("tags") or []]
    tags += [str(card["library_name"])] if card.get("library_name") else []
    return tags + ([f"license:{card['license']}"] if card.get("license") else [])


def _safetensors(files: dict[str, bytes]) -> dict | None:
    """Parameters per dtype over the repo's .safetensors files, counted from their headers as the Hub does."""
    parameters: dict[str, int] = {}
    for path, data in files.items():
        if not path.endswith(".safetensors") or len(data) < 8:
            continue
        (size,) = struct.unpack("<Q", data[:8])
        for name, tensor in json.loads(data[8:8 + size]).items():
            if name != "__metadata__":
                parameters[tensor["dtype"]] = parameters.get(tensor["dtype"], 0) + math.prod(tensor["shape"])
    return {"parameters": parameters, "total": sum(parameters.values())} if parameters else None


def _file_entry(path: str, data: bytes) -> dict:
    entry = {"type": "file", "path": path, "size": len(data), "oid": _blob_oid(data)}
    if is_lfs(path, len(data)):
        entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
    return entry


class Handler(BaseHTTPRequestHandler):
    state: HubState
    hang_s: float = 0.0  # >0: sleep this long before answering (a Hub that hangs)

    def log_message(self, *args):  # quiet in tests
        pass

    # -- plumbing -------------------------------------------------------------------------------------------------
    def _send(self, status: int, body: bytes = b"", headers: dict | None = None, content_type="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, payload, headers: dict | None = None):
        self._send(status, json.dumps(payload).encode(), headers)

    def _error(self, status: int, code: str, message: str):
        self._json(status, {"error": message}, {"X-Error-Code": code, "X-Error-Message": message})

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _route(self):
        if self.hang_s:
            time.sleep(self.hang_s)
        path = urlparse(self.path).path
        self.state.requests.append(f"{self.command} {path}")
        routes = [
            ("GET", r"/api/whoami-v2", self.whoami),
            ("POST", r"/api/repos/create", self.create_repo),
            ("POST", r"/api/validate-yaml", lambda: self._json(200, {})),
            ("GET|POST|DELETE", r"/api/spaces/([^/]+/[^/]+)/variables", self.space_variables),
            ("POST", r"/(?:(datasets|spaces)/)?([^/]+/[^/]+)\.git/info/lfs/objects/batch", self.lfs_batch),
            ("PUT", r"/lfs-upload/([0-9a-f]{64})", self.lfs_upload),
            ("POST", r"/api/(models|datasets|spaces)/([^/]+/[^/]+)/preupload/(.+)", self.preupload),
            ("POST", r"/api/(models|datasets|spaces)/([^/]+/[^/]+)/commit/(.+)", self.commit),
            ("POST", r"/api/(models|datasets|spaces)/([^/]+/[^/]+)/paths-info/(.+)", self.paths_info),
            ("GET", r"/api/(models|datasets|spaces)/([^/]+/[^/]+)/tree/([^/]+)(?:/(.*))?", self.tree),
            ("GET", r"/api/(models|datasets|spaces)/([^/]+/[^/]+)/revision/(.+)", self.info),
            ("GET", r"/api/(models|datasets|spaces)/([^/]+/[^/]+)", self.info),
            ("GET", r"/api/models", self.list_models),
            ("GET|HEAD", r"/(?:(datasets|spaces)/)?([^/]+/[^/]+)/resolve/([^/]+)/(.+)", self.resolve),
        ]
        for methods, pattern, handler in routes:
            m = re.fullmatch(pattern, path)
            if m and self.command in methods.split("|"):
                return handler(*[unquote(g) if g else g for g in m.groups()])
        self._error(404, "EntryNotFound", f"no route for {self.command} {path}")

    do_GET = do_POST = do_HEAD = do_DELETE = do_PUT = _route

    def _repo(self, kind: str, repo_id: str) -> Repo | None:
        repo = self.state.repos.get((TYPES.get(kind, kind), repo_id))
        if repo is None:
            self._error(404, "RepoNotFound", f"Repository Not Found for url: {self.path}")
        elif repo.private and not self.headers.get("Authorization", "").startswith("Bearer "):
            self._error(401, "RepoNotFound", f"Repository Not Found for url: {self.path} (private: send a token)")
            return None
        return repo

    # -- endpoints --------------------------------------------------------------------------------------------------
    def whoami(self):
        self._json(200, {"name": "test-user", "type": "user", "orgs": [], "auth": {"accessToken": {"role": "write"}}})

    def create_repo(self):
        req = json.loads(self._body() or b"{}")
        repo_type = req.get("type") or "model"
        repo_id = f"{req.get('organization') or 'test-user'}/{req['name']}"
        url = f"http://{self.headers['Host']}/{PREFIX[repo_type]}{repo_id}"
        if repo_type == "space" and not req.get("sdk"):
            return self._error(400, "BadRequest", "a Space needs its sdk (gradio, docker or static)")
        # huggingface_hub 2.x sends `visibility`; older clients `private`
        private = req.get("visibility") == "private" or bool(req.get("private"))
        with self.state.lock:
            if (repo_type, repo_id) in self.state.repos:
                return self._json(409, {"error": "You already created this repo", "url": url})
            repo = Repo(repo_type, private, sdk=req.get("sdk"))
            # like the Hub: a new repo starts with one commit holding .gitattributes
            repo.commits.append((hashlib.sha1(f"init {repo_type} {repo_id}".encode()).hexdigest(),
                                 {".gitattributes": b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"}))
            self.state.repos[(repo_type, repo_id)] = repo
        self._json(200, {"url": url, "name": repo_id})

    def preupload(self, kind, repo_id, revision):
        if self._repo(kind, repo_id) is None:
            return
        files = json.loads(self._body() or b"{}").get("files", [])
        self._json(200, {"files": [{"path": f["path"], "shouldIgnore": False,
                                    "uploadMode": "lfs" if is_lfs(f["path"], f.get("size", 0)) else "regular"}
                                   for f in files]})

    def lfs_batch(self, kind, repo_id):
        if self._repo(kind or "models", repo_id) is None:
            return
        objects = []
        for obj in json.loads(self._body() or b"{}").get("objects", []):
            entry = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if obj["oid"] not in self.state.lfs:  # already stored: no action, the client skips the upload
                entry["actions"] = {"upload": {"href": f"http://{self.headers['Host']}/lfs-upload/{obj['oid']}",
                                               "header": {}}}
            objects.append(entry)
        self._json(200, {"transfer": "basic", "objects": objects})

    def lfs_upload(self, oid):
        data = self._body()
        if hashlib.sha256(data).hexdigest() != oid:
            return self._error(400, "BadRequest", "content does not match its sha256")
        self.state.lfs[oid] = data
        self._send(200)

    def commit(self, kind, repo_id, revision):
        repo = self._repo(kind, repo_id)
        if repo is None:
            return
        lines = [json.loads(line) for line in self._body().splitlines() if line.strip()]
        header = next((line.get("value", {}) for line in lines if line["key"] == "header"), {})
        parent = header.get("parentCommit")
        # ?create_pr=1: the commit opens pull request N on a ref of its own (refs/pr/N), from parentCommit if given
        create_pr = (parse_qs(urlparse(self.path).query).get("create_pr") or ["0"])[0] == "1"
        with self.state.lock:
            current = repo.files_at(parent if create_pr and parent else revision)
            if parent and not create_pr and current and current[0] != parent:  # as the Hub: the branch moved on
                return self._error(412, "PreconditionFailed", "A commit has happened since. Please refresh and try "
                                                              "again.")
            files = dict(current[1]) if current else {}
            for line in lines:
                value = line.get("value", {})
                if line["key"] == "file":
                    content = value["content"]
                    data = base64.b64decode(content) if value.get("encoding") == "base64" else content.encode()
                    if len(data) >= LFS_MIN_SIZE:  # as the Hub: a file this large goes through LFS or not at all
                        return self._error(400, "BadRequest", f"{value['path']} is larger than 10 MiB: upload it "
                                                              "through LFS")
                    files[value["path"]] = data
                elif line["key"] == "lfsFile":
                    if value["oid"] not in self.state.lfs:
                        return self._error(400, "BadRequest", f"LFS object {value['oid']} was never uploaded")
                    files[value["path"]] = self.state.lfs[value["oid"]]
                elif line["key"] == "deletedFile":
                    files.pop(value["path"], None)
                elif line["key"] == "deletedFolder":
                    files = {p: d for p, d in files.items() if not p.startswith(value["path"].rstrip("/") + "/")}
            sha = hashlib.sha1(f"{repo_id}{len(repo.commits)}{len(repo.refs)}{time.time()}".encode()).hexdigest()
            pr_url = None
            base = f"http://{self.headers['Host']}/{PREFIX[repo.repo_type]}{repo_id}"
            if create_pr:
                number = len(repo.refs) + 1
                repo.refs[f"refs/pr/{number}"] = [(sha, files)]
                pr_url = f"{base}/discussions/{number}"
            elif revision in repo.refs:
                repo.refs[revision].append((sha, files))
            else:
                repo.commits.append((sha, files))
        self._json(200, {"commitUrl": f"{base}/commit/{sha}", "commitOid": sha, "pullRequestUrl": pr_url})

    @staticmethod
    def _entries(files: dict[str, bytes], prefix: str = "", recursive: bool = True, paths=None) -> list[dict]:
        """Tree entries under `prefix`: files, and the folders that hold them (direct children unless recursive)."""
        entries, folders = [], set()
        for p, d in sorted(files.items()):
            if paths is not None:
                if p in paths:
                    entries.append(_file_entry(p, d))
                folders.update(f for f in paths if p.startswith(f.rstrip("/") + "/"))
                continue
            if not p.startswith(prefix):
                continue
            parts = p[len(prefix):].split("/")
            for depth in range(1, len(parts) if recursive else min(2, len(parts))):
                folders.add(prefix + "/".join(parts[:depth]))
            if recursive or len(parts) == 1:
                entries.append(_file_entry(p, d))
        oid = lambda f: hashlib.sha1(f.encode()).hexdigest()  # noqa: E731
        return sorted(entries + [{"type": "directory", "path": f, "oid": oid(f)} for f in folders],
                      key=lambda e: e["path"])

    def info(self, kind, repo_id, revision="main"):
        repo = self._repo(kind, repo_id)
        if repo is None:
            return
        found = repo.files_at(revision)
        if found is None and revision not in ("main", None):
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        sha, files = found or ("0" * 40, {})
        self._json(200, self._expanded(self._summary(repo_id, repo, sha, files)))

    @staticmethod
    def _summary(repo_id: str, repo: Repo, sha: str, files: dict[str, bytes]) -> dict:
        """Everything the Hub says of a repo: its info, with the card's header (cardData), tags and parameters."""
        card = _card_data(files)
        summary = {
            "_id": repo_id, "id": repo_id, "modelId": repo_id, "author": repo_id.split("/")[0], "sha": sha,
            "private": repo.private, "disabled": False, "gated": False, "downloads": 0, "likes": 0,
            "tags": _tags(card), "lastModified": "2026-01-01T00:00:00.000Z", "createdAt": "2026-01-01T00:00:00.000Z",
            "siblings": [{"rfilename": p, "size": len(d)} for p, d in sorted(files.items())],
        }
        if card is not None:
            summary["cardData"] = card
            summary["library_name"] = card.get("library_name")
        if repo.repo_type == "model" and _safetensors(files):
            summary["safetensors"] = _safetensors(files)
        if repo.repo_type == "space":
            summary["sdk"] = repo.sdk
            summary["models"] = (card or {}).get("models") or []
        return summary

    def _expanded(self, summary: dict, default: tuple[str, ...] | None = None) -> dict:
        """`expand=…` (repeated, or expand[]=…): only those fields, with the ids; else `default` fields (None: all)."""
        query = parse_qs(urlparse(self.path).query)
        expand = query.get("expand", []) + query.get("expand[]", [])
        keep = expand or default
        if keep is None:
            return summary
        return {k: v for k, v in summary.items() if k in {"_id", "id", *keep}}

    # What the Hub's model list gives without expand: full=true adds the files and commit, cardData=true the card
    LIST_DEFAULT = ("likes", "downloads", "tags", "library_name", "createdAt", "modelId", "private")
    LIST_FULL = ("siblings", "sha", "lastModified", "author", "gated", "disabled")

    def list_models(self):
        """GET /api/models?filter=…&search=…&author=…&limit=…: every `filter` must be one of the repo's tags, `search`
        is part of its id, `author` its owner; fields as list_models asks (expand, or full / cardData)."""
        query = parse_qs(urlparse(self.path).query)
        wanted = set(query.get("filter", []) + query.get("filter[]", []))
        search = (query.get("search") or [""])[0].lower()
        author = (query.get("author") or [None])[0]
        limit = int((query.get("limit") or ["1000"])[0])
        default = self.LIST_DEFAULT
        if (query.get("full") or [""])[0].lower() == "true":
            default += self.LIST_FULL
        if (query.get("cardData") or [""])[0].lower() == "true":
            default += ("cardData",)
        listed = []
        anonymous = not self.headers.get("Authorization", "").startswith("Bearer ")
        with self.state.lock:  # an anonymous request does not see private repos
            repos = [(rid, r) for (kind, rid), r in self.state.repos.items()
                     if kind == "model" and r.commits and not (r.private and anonymous)]
        for repo_id, repo in repos:
            sha, files = repo.commits[-1]
            summary = self._summary(repo_id, repo, sha, files)
            if wanted <= set(summary["tags"]) and search in repo_id.lower() and author in (None, repo_id.split("/")[0]):
                listed.append(self._expanded(summary, default))
        self._json(200, listed[:limit])

    def tree(self, kind, repo_id, revision, sub=None):
        repo = self._repo(kind, repo_id)
        if repo is None:
            return
        found = repo.files_at(revision)
        if found is None:
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        recursive = "recursive=true" in (urlparse(self.path).query or "").lower()
        prefix = (sub.strip("/") + "/") if sub else ""
        entries = self._entries(found[1], prefix, recursive)
        if prefix and not entries:
            return self._error(404, "EntryNotFound", f"{sub} does not exist on {revision}")
        self._json(200, entries)

    def paths_info(self, kind, repo_id, revision):
        repo = self._repo(kind, repo_id)
        if repo is None:
            return
        raw = self._body().decode()
        try:
            paths = json.loads(raw).get("paths", [])
        except json.JSONDecodeError:  # form-encoded: paths=a&paths=b
            from urllib.parse import parse_qs
            paths = parse_qs(raw).get("paths", [])
        found = repo.files_at(revision)
        self._json(200, self._entries(found[1], paths=set(paths)) if found else [])

    def space_variables(self, repo_id):
        """GET: the Space's variables; POST {key, value[, description]}: add or update one; DELETE {key}: remove it.
        Each answers every variable, as {key: {value, description, updatedAt}}."""
        repo = self._repo("spaces", repo_id)
        if repo is None:
            return
        if self.command != "GET":
            req = json.loads(self._body() or b"{}")
            if not isinstance(req.get("key"), str) or not req["key"]:
                return self._error(400, "BadRequest", "a variable needs its key")
            with self.state.lock:
                if self.command == "DELETE":
                    repo.variables.pop(req["key"], None)
                else:
                    repo.variables[req["key"]] = {"value": str(req.get("value", "")),
                                                  "description": req.get("description"),
                                                  "updatedAt": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())}
        self._json(200, repo.variables)

    def resolve(self, kind, repo_id, revision, path):
        repo = self._repo(kind or "models", repo_id)
        if repo is None:
            return
        found = repo.files_at(revision)
        if found is None:
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        sha, files = found
        if path not in files:
            return self._error(404, "EntryNotFound", f"{path} does not exist on {revision}")
        data = files[path]
        etag = f'"{hashlib.sha256(data).hexdigest() if is_lfs(path, len(data)) else _blob_oid(data)}"'
        self._send(200, data, {"X-Repo-Commit": sha, "ETag": etag}, content_type="application/octet-stream")


def serve(port: int = 0, hang_s: float = 0.0) -> tuple[ThreadingHTTPServer, HubState]:
    """Start the server in a daemon thread; returns (server, state). server.server_address[1] is the port."""
    state = HubState()
    handler = type("BoundHandler", (Handler,), {"state": state, "hang_s": hang_s})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, state


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--hang", type=float, default=0.0, help="seconds to wait before each answer")
    args = parser.parse_args()
    srv, _ = serve(args.port, args.hang)
    print(f"Hub test server on http://127.0.0.1:{srv.server_address[1]} (Ctrl-C to stop)")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        srv.shutdown()
