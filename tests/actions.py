"""A GitHub Actions job run as the runner runs it, for the workflows ``init --ci github`` writes.

Not a general Actions emulator: exactly what those workflows use, done the way GitHub does it,
so a test can replay the generated YAML night after night and catch what only the field shows.

- **Each run starts from nothing**: a fresh clone of the repository's committed files, plus
  what ``actions/cache`` restores (the newest entry whose key starts with a restore key, made
  and unpacked with the tar flags the action uses: ``--posix``, so mtimes to the nanosecond),
  saved again after the job only when it succeeded.
- **Steps as written**: ``run:`` in ``bash --noprofile --norc -eo pipefail`` in the step's
  working directory, with the step's ``env:``, ``GITHUB_OUTPUT`` and ``GITHUB_STEP_SUMMARY``;
  ``${{ }}`` expressions evaluated (contexts: github, matrix, secrets, steps, needs); ``if:``
  conditions (default ``success()``).
- **Uploads as the actions pack them**: ``upload-pages-artifact`` tars the folder following
  links, without ``.git`` and ``.github``; ``upload-artifact`` leaves hidden files out unless
  ``include-hidden-files``. The ``deploy`` job runs when its ``if:`` holds.

The install step is run once, by the caller, from the same YAML (installing is slow and the
same every night); each night checks the step still says the same.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

# --- expressions --------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<op>==|!=|&&|\|\||\(|\)|!)"
    r"|(?P<call>success\(\)|failure\(\)|always\(\))|(?P<word>[A-Za-z_][\w-]*(?:\.[\w-]+)*))"
)


class Expression:
    """An Actions expression (the part inside ``${{ }}``): literals, context paths, ``==``,
    ``!=``, ``!``, ``&&``, ``||``, parentheses and the status functions."""

    def __init__(self, text: str, contexts: dict, *, succeeded: bool = True) -> None:
        self.tokens = self._tokens(text)
        self.contexts, self.succeeded = contexts, succeeded

    @staticmethod
    def _tokens(text: str) -> list[tuple[str, str]]:
        tokens, at = [], 0
        text = text.strip()
        while at < len(text):
            match = _TOKEN.match(text, at)
            if not match or match.end() == at:
                raise ValueError(f"cannot read the expression at {text[at:]!r}")
            kind = match.lastgroup
            tokens.append((kind, match.group(kind)))
            at = match.end()
        return tokens

    def value(self) -> object:
        result = self._or()
        if self.tokens:
            raise ValueError(f"unexpected {self.tokens[0][1]!r}")
        return result

    def _take(self, op: str) -> bool:
        if self.tokens and self.tokens[0] == ("op", op):
            self.tokens.pop(0)
            return True
        return False

    def _or(self) -> object:
        left = self._and()
        while self._take("||"):
            right = self._and()
            left = left if truthy(left) else right
        return left

    def _and(self) -> object:
        left = self._compare()
        while self._take("&&"):
            right = self._compare()
            left = right if truthy(left) else left
        return left

    def _compare(self) -> object:
        left = self._unary()
        for op in ("==", "!="):
            if self._take(op):
                right = self._unary()
                same = (
                    str(left if left is not None else "").lower()
                    == str(right if right is not None else "").lower()
                )
                return same if op == "==" else not same
        return left

    def _unary(self) -> object:
        if self._take("!"):
            return not truthy(self._unary())
        if self._take("("):
            value = self._or()
            if not self._take(")"):
                raise ValueError("missing )")
            return value
        kind, text = self.tokens.pop(0)
        if kind == "string":
            return text[1:-1].replace("''", "'")
        if kind == "call":
            return {"success()": self.succeeded, "failure()": not self.succeeded}.get(text, True)
        if kind == "word":
            if text in ("true", "false"):
                return text == "true"
            found: object = self.contexts
            for part in text.split("."):
                found = found.get(part, "") if isinstance(found, dict) else ""
            return found
        raise ValueError(f"unexpected {text!r}")


def truthy(value: object) -> bool:
    return value not in (None, "", False, 0)


def as_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def interpolate(text: str, contexts: dict) -> str:
    """``text`` with every ``${{ expression }}`` replaced by its value."""
    return re.sub(
        r"\$\{\{(.*?)\}\}",
        lambda m: as_text(Expression(m.group(1), contexts).value()),
        text,
        flags=re.DOTALL,
    )


def condition(text: str | None, contexts: dict, *, succeeded: bool) -> bool:
    """A step's or job's ``if:`` (with or without ``${{ }}``). As on GitHub, one that calls
    no status function holds only while the job succeeds (``success() && …``)."""
    if text is None:
        return succeeded
    inner = text.strip()
    if inner.startswith("${{") and inner.endswith("}}"):
        inner = inner[3:-2]
    if not re.search(r"\b(success|failure|always|cancelled)\(\)", inner):
        inner = f"success() && ({inner})"
    return truthy(Expression(inner, contexts, succeeded=succeeded).value())


# --- the cache ----------------------------------------------------------------------------------


class Caches:
    """The repository's caches: entries by key, newest last; what ``actions/cache`` restores
    and saves, with its tar flags (created relative to the workspace, ``--posix``)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.keys: list[str] = []

    def evict(self) -> None:
        """Unused for a week: GitHub drops them all."""
        self.keys.clear()

    def restore(self, workspace: Path, key: str, prefixes: list[str]) -> str | None:
        hit = key if key in self.keys else None
        for prefix in prefixes:
            if hit is None:
                hit = next((k for k in reversed(self.keys) if k.startswith(prefix)), None)
        if hit is not None:
            archive = self._archive(hit)
            subprocess.run(["tar", "-xf", str(archive), "-P", "-C", str(workspace)], check=True)
        return hit

    def save(self, workspace: Path, key: str, paths: list[str]) -> bool:
        if key in self.keys:
            return False  # a key is written once
        present = [p for p in paths if os.path.lexists(workspace / p)]
        if not present:
            return False  # the action warns and saves nothing
        manifest = self.folder / "manifest.txt"
        manifest.write_text("\n".join(present) + "\n")
        self.keys.append(key)
        archive = self._archive(key)
        subprocess.run(
            ["tar", "--posix", "-cf", str(archive), "--exclude", str(archive), "-P",
             "-C", str(workspace), "--files-from", str(manifest)],
            check=True,
        )  # fmt: skip
        return True

    def _archive(self, key: str) -> Path:
        return self.folder / f"cache-{self.keys.index(key)}.tar"


# --- a job --------------------------------------------------------------------------------------


@dataclass
class Run:
    """What one run of the build job did, and whether the deploy job ran."""

    succeeded: bool
    restored: str | None
    outputs: dict[str, str]
    job_outputs: dict[str, str]
    summary: str
    log: str
    workspace: Path
    #: The uploaded artifact, unpacked (None when the upload step was skipped).
    uploaded: Path | None = None
    deployed: bool = False
    saved: bool = False
    steps: list[str] = field(default_factory=list)


class Runner:
    """Runs the ``build`` job of a workflow (and decides its ``deploy`` job) as GitHub would,
    once per call, each in a new workspace."""

    def __init__(
        self,
        workflow: dict,
        repository: Path,
        scratch: Path,
        *,
        install: str,
        env: dict[str, str],
        secrets: dict[str, str],
        caches: Caches | None = None,
    ) -> None:
        self.workflow, self.repository, self.scratch = workflow, repository, scratch
        self.install, self.env, self.secrets = install, env, secrets
        self.caches = caches or Caches(scratch / "caches")
        self.runs = 0

    def run(
        self, *, event: str = "schedule", schedule: str = "", matrix: dict | None = None
    ) -> Run:
        self.runs += 1
        run_id = str(1000 + self.runs)
        job = self.workflow["jobs"]["build"]
        workspace = self.scratch / f"run-{self.runs}" / "workspace"
        temp = workspace.parent / "runner-temp"
        temp.mkdir(parents=True)
        github = {"event_name": event, "event": {"schedule": schedule}, "run_id": run_id}
        contexts: dict = {
            "github": github, "matrix": matrix or {}, "secrets": self.secrets, "steps": {},
        }  # fmt: skip
        output_file, summary_file = temp / "output", temp / "summary"
        succeeded, restored, log, names = True, None, [], []
        upload: Path | None = None
        post: list[tuple[str, list[str]]] = []
        folder = job.get("defaults", {}).get("run", {}).get("working-directory")
        for step in job["steps"]:
            names.append(step.get("name") or step.get("uses", "").split("@")[0])
            if not condition(step.get("if"), contexts, succeeded=succeeded):
                continue
            uses = step.get("uses", "").split("@")[0]
            inputs = {k: interpolate(as_text(v), contexts) for k, v in step.get("with", {}).items()}
            if uses == "actions/checkout":
                assert inputs.get("persist-credentials") == "false"
                subprocess.run(
                    ["git", "clone", "-q", str(self.repository), str(workspace)], check=True
                )
            elif uses == "actions/setup-python":
                pass  # the Python of the environment the install step installed into
            elif uses == "actions/cache":
                key, paths = inputs["key"], inputs["path"].split()
                prefixes = inputs.get("restore-keys", "").split()
                restored = self.caches.restore(workspace, key, prefixes)
                post.append((key, paths))
            elif uses in ("actions/upload-pages-artifact", "actions/upload-artifact"):
                upload = self._upload(uses, workspace, inputs, temp)
            elif "run" in step:
                if step.get("name") == "Install catalog-gen":
                    assert step["run"] == self.install, "the install step changed"
                    continue
                env = {k: interpolate(as_text(v), contexts) for k, v in step.get("env", {}).items()}
                cwd = workspace / interpolate(folder, contexts) if folder else workspace
                result = subprocess.run(
                    ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
                    cwd=cwd,
                    env={
                        **self.env, **env,
                        "GITHUB_ACTIONS": "true", "CI": "true",
                        "GITHUB_WORKSPACE": str(workspace), "RUNNER_TEMP": str(temp),
                        "GITHUB_OUTPUT": str(output_file), "GITHUB_STEP_SUMMARY": str(summary_file),
                    },
                    capture_output=True, text=True, timeout=600,
                )  # fmt: skip
                log.append(result.stdout + result.stderr)
                outputs = _outputs(output_file)
                if "id" in step:
                    contexts["steps"][step["id"]] = {"outputs": outputs}
                succeeded = succeeded and result.returncode == 0
            else:
                raise AssertionError(f"a step this runner does not know: {step}")
        saved = False
        if succeeded:  # actions/cache saves in its post step, when the job succeeded
            for key, paths in post:
                saved = self.caches.save(workspace, key, paths) or saved
        job_outputs = {
            name: interpolate(str(value), contexts)
            for name, value in job.get("outputs", {}).items()
        }
        deployed = False
        if "deploy" in self.workflow["jobs"]:
            deploy = self.workflow["jobs"]["deploy"]
            needs = {"needs": {"build": {"outputs": job_outputs}}}
            deployed = succeeded and condition(deploy.get("if"), needs, succeeded=succeeded)
        return Run(
            succeeded=succeeded,
            restored=restored,
            outputs=contexts["steps"].get("build", {}).get("outputs", {}),
            job_outputs=job_outputs,
            summary=summary_file.read_text() if summary_file.exists() else "",
            log="".join(log),
            workspace=workspace,
            uploaded=upload,
            deployed=deployed,
            saved=saved,
            steps=names,
        )

    def _upload(self, uses: str, workspace: Path, inputs: dict, temp: Path) -> Path:
        source = workspace / inputs["path"]
        target = temp / "artifact"
        target.mkdir()
        if uses == "actions/upload-pages-artifact":
            archive = temp / "artifact.tar"
            subprocess.run(
                ["tar", "--dereference", "--hard-dereference", "--directory", str(source),
                 "-cf", str(archive), "--exclude=.git", "--exclude=.github", "."],
                check=True,
            )  # fmt: skip
            subprocess.run(["tar", "-xf", str(archive), "-C", str(target)], check=True)
            return target
        hidden = inputs.get("include-hidden-files") == "true"
        for path in sorted(source.rglob("*")):
            relative = path.relative_to(source)
            if not hidden and any(part.startswith(".") for part in relative.parts):
                continue
            if path.is_file():
                (target / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target / relative)
        return target


def _outputs(path: Path) -> dict[str, str]:
    """What steps wrote to ``GITHUB_OUTPUT`` (``name=value`` lines)."""
    if not path.exists():
        return {}
    found = {}
    for line in path.read_text().splitlines():
        name, _, value = line.partition("=")
        found[name] = value
    return found
