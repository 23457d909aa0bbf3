"""A small Hub-protocol server for tests: receives pushes from the real huggingface_hub client.

It implements the write path of the Hub API (create repo, validate YAML, preupload, commit, create branch) and
file downloads (resolve), and commits what it receives into plain git repositories laid out as ``<root>/<type>s/<org>/<name>``, the layout that
olah (an independent Hub mirror) serves read-only. Tokens: ``tokens`` maps a token to the namespaces it may
write; a request without a token gets 401, a token writing elsewhere 403. ``fail_next`` injects faults:
"500" answers 500, "drop" closes the connection without an answer.
"""

from __future__ import annotations

import base64
import json
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def git(repo: Path, *args: str) -> str:
    env = {
        "GIT_AUTHOR_NAME": "hub",
        "GIT_AUTHOR_EMAIL": "hub@localhost",
        "GIT_COMMITTER_NAME": "hub",
        "GIT_COMMITTER_EMAIL": "hub@localhost",
        "PATH": "/usr/bin:/bin",
    }
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True, env=env).stdout.strip()


class HubServer:
    def __init__(self, root: Path, tokens: dict[str, list[str]]):
        self.root, self.tokens = Path(root), tokens
        self.fail_next: list[str] = []  # faults for the next commit calls, in order
        self.requests: list[str] = []
        self.commits: list[str] = []
        self.hardware: dict[str, str] = {}  # Space id -> the hardware requested for it
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    def repo_path(self, repo_type: str, repo_id: str) -> Path:
        return self.root / f"{repo_type}s" / repo_id

    def create_repo(self, repo_type: str, repo_id: str) -> bool:
        path = self.repo_path(repo_type, repo_id)
        if path.exists():
            return False
        path.mkdir(parents=True)
        git(path, "init", "-q", "-b", "main")
        (path / ".gitattributes").write_text("*.safetensors binary\n")
        git(path, "add", "-A")
        git(path, "commit", "-q", "-m", "initial commit")
        return True

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status: int, body: dict | None = None):
                data = json.dumps(body or {}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _auth(self, namespace: str | None) -> bool:
                header = self.headers.get("Authorization", "")
                token = header[7:] if header.startswith("Bearer ") else None
                if token not in server.tokens:
                    self._send(401, {"error": "Invalid credentials in Authorization header"})
                    return False
                if namespace is not None and namespace not in server.tokens[token]:
                    self._send(403, {"error": f"You don't have the rights to create or write to {namespace}"})
                    return False
                return True

            def do_HEAD(self):
                self._resolve(send_body=False)

            def do_GET(self):
                self._resolve(send_body=True)

            def _resolve(self, send_body: bool):
                """GET/HEAD /{type}s/{org}/{name}/resolve/{rev}/{path} (models without the prefix)."""
                path = self.path.split("?")[0].strip("/")
                server.requests.append(f"{'GET' if send_body else 'HEAD'} /{path}")
                parts = path.split("/")
                if parts[0] == "api" and len(parts) >= 6 and parts[4] == "tree":
                    return self._tree(parts[1][:-1], "/".join(parts[2:4]), parts[5])
                if parts[0] in ("datasets", "spaces"):
                    repo_type, parts = parts[0][:-1], parts[1:]
                else:
                    repo_type = "model"
                if len(parts) < 5 or parts[2] != "resolve":
                    return self._send(404, {"error": "not found"})
                repo = server.repo_path(repo_type, "/".join(parts[:2]))
                rev, file = parts[3], "/".join(parts[4:])
                try:
                    commit = git(repo, "rev-parse", rev)
                    blob = git(repo, "rev-parse", f"{rev}:{file}")
                    data = subprocess.run(
                        ["git", "cat-file", "blob", blob], cwd=repo, capture_output=True, check=True
                    ).stdout
                except (subprocess.CalledProcessError, FileNotFoundError, NotADirectoryError):
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound" if repo.exists() else "RepoNotFound")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("X-Repo-Commit", commit)
                self.send_header("ETag", f'"{blob}"')
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if send_body:
                    self.wfile.write(data)

            def _tree(self, repo_type: str, repo_id: str, rev: str):
                """GET /api/{type}s/{repo}/tree/{rev}?recursive=true: the files of a revision (one page)."""
                repo = server.repo_path(repo_type, repo_id)
                if not repo.exists():
                    return self._send(404, {"error": "Repository not found"})
                entries = []
                for line in git(repo, "ls-tree", "-r", "-l", rev).splitlines():
                    meta, name = line.split("\t", 1)
                    _, _, oid, size = meta.split()
                    entries.append({"type": "file", "path": name, "oid": oid, "size": int(size)})
                data = json.dumps(entries).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path.split("?")[0]
                server.requests.append(f"POST {path}")
                parts = path.strip("/").split("/")
                if path == "/api/repos/create":
                    payload = json.loads(body)
                    namespace = payload.get("organization") or "user"
                    repo_type = payload.get("type") or "model"
                    if not self._auth(namespace):
                        return
                    repo_id = f"{namespace}/{payload['name']}"
                    created = server.create_repo(repo_type, repo_id)
                    prefix = "" if repo_type == "model" else f"{repo_type}s/"
                    return self._send(
                        200 if created else 409, {"url": f"{server.url}/{prefix}{repo_id}", "name": repo_id}
                    )
                if path == "/api/validate-yaml":
                    return self._send(200, {"errors": [], "warnings": []})
                if parts[0] == "api" and len(parts) >= 5:
                    repo_type, repo_id, action = parts[1][:-1], "/".join(parts[2:4]), parts[4]
                    rev = "/".join(parts[5:]) or "main"
                    if not self._auth(parts[2]):
                        return
                    repo = server.repo_path(repo_type, repo_id)
                    if not repo.exists():
                        return self._send(404, {"error": "Repository not found"})
                    if action == "preupload":
                        files = json.loads(body)["files"]
                        return self._send(
                            200,
                            {
                                "files": [
                                    {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False, "oid": None}
                                    for f in files
                                ]
                            },
                        )
                    if action == "hardware":
                        server.hardware[repo_id] = json.loads(body)["flavor"]
                        requested = {"current": None, "requested": server.hardware[repo_id]}
                        return self._send(200, {"stage": "BUILDING", "hardware": requested})
                    if action == "branch":
                        git(repo, "branch", "-f", rev, "main")
                        return self._send(200, {})
                    if action == "commit":
                        return self._commit(repo, rev, body)
                self._send(404, {"error": f"no such endpoint {path}"})

            def _commit(self, repo: Path, rev: str, body: bytes):
                if server.fail_next:
                    fault = server.fail_next.pop(0)
                    if fault == "drop":
                        self.close_connection = True
                        self.connection.shutdown(2)
                        return
                    return self._send(int(fault), {"error": "internal error"})
                summary = "commit"
                try:
                    current = git(repo, "rev-parse", "--abbrev-ref", "HEAD")
                    if current != rev:
                        git(repo, "checkout", "-q", "-B", rev)
                    for line in body.decode().splitlines():
                        item = json.loads(line)
                        value = item["value"]
                        if item["key"] == "header":
                            summary = value.get("summary") or summary
                        elif item["key"] == "file":
                            target = repo / value["path"]
                            target.parent.mkdir(parents=True, exist_ok=True)
                            target.write_bytes(base64.b64decode(value["content"]))
                        elif item["key"] == "deletedFile":
                            (repo / value["path"]).unlink(missing_ok=True)
                        else:
                            return self._send(400, {"error": f"unsupported commit item {item['key']}"})
                    git(repo, "add", "-A")
                    git(repo, "commit", "-q", "--allow-empty", "-m", summary)
                    oid = git(repo, "rev-parse", "HEAD")
                finally:
                    if git(repo, "rev-parse", "--abbrev-ref", "HEAD") != "main":
                        git(repo, "checkout", "-q", "main")
                server.commits.append(f"{repo.relative_to(server.root)}@{rev}")
                self._send(
                    200,
                    {
                        "commitUrl": f"{server.url}/{repo.relative_to(server.root)}/commit/{oid}",
                        "commitOid": oid,
                        "pullRequestUrl": None,
                    },
                )

        return Handler
