"""Candidate sources: in-memory, path, and git (a real repository made in tmp_path)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from vudo.errors import InvalidInputError, NotFoundError
from vudo.pkg.lockfile import Lockfile
from vudo.pkg.manifest import Dependency, load_manifest
from vudo.pkg.resolve import resolve
from vudo.pkg.sources import Candidate, CandidateSource, GitSource, MemorySource, PathSource
from vudo.pkg.versions import ANY, Version, parse_requirement

AUTHOR = "12" * 32
GIT_ENV = {
    **os.environ,
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.org",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.org",
}


def git(repo: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", *args], cwd=repo, env=GIT_ENV, capture_output=True, text=True, check=True
    )
    return proc.stdout.strip()


def spirit_toml(name: str, version: str, deps: str = "") -> str:
    text = f'name = "{name}"\nversion = "{version}"\nauthor = "{AUTHOR}"\n'
    return text + ("[dependencies]\n" + deps if deps else "")


def commit(repo: Path, version: str, deps: str = "", name: str = "gitdep") -> str:
    (repo / "spirit.toml").write_text(spirit_toml(name, version, deps))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", f"release {version}")
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "upstream"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    inner = path / "libs" / "inner"
    inner.mkdir(parents=True)
    (inner / "spirit.toml").write_text(spirit_toml("inner", "0.5.0"))
    commit(path, "1.0.0", 'inner = { path = "libs/inner" }\n')
    git(path, "tag", "v1.0.0")
    commit(path, "1.1.0")
    return path


def git_dep(url: Path, rev: str, req: str = "*") -> Dependency:
    return Dependency("gitdep", parse_requirement(req), git=str(url), rev=rev)


def test_memory_source_implements_protocol() -> None:
    src = MemorySource([Candidate("a", Version("1.0.0")), Candidate("a", Version("2.0.0"))])
    assert isinstance(src, CandidateSource)
    assert [str(c.version) for c in src.candidates("a")] == ["1.0.0", "2.0.0"]
    assert list(src.candidates("b")) == []
    assert src.names() == ["a"] and len(src) == 2


def test_path_source_reads_manifest(tmp_path: Path) -> None:
    (tmp_path / "spirit.toml").write_text(spirit_toml("lib", "0.2.0", 'x = "^1"\n'))
    src = PathSource(tmp_path)
    (candidate,) = src.candidates("lib")
    assert candidate.version == Version("0.2.0")
    assert candidate.dependencies == load_manifest(tmp_path).dependencies
    assert candidate.location == tmp_path.resolve()
    assert candidate.source == f"path+{tmp_path.resolve()}"
    assert candidate.digest is None and candidate.signer is None
    with pytest.raises(InvalidInputError, match='named "lib"'):
        list(src.candidates("other"))
    with pytest.raises(NotFoundError):
        PathSource(tmp_path / "missing").candidate()


def test_git_rev_by_tag_branch_and_commit(tmp_path: Path, repo: Path) -> None:
    cache = GitSource(tmp_path / "cache", environ=GIT_ENV)
    tagged = cache.candidate(str(repo), "v1.0.0")
    assert tagged.version == Version("1.0.0")
    first_commit = git(repo, "rev-parse", "v1.0.0")
    assert tagged.source == f"git+{repo}#{first_commit}"
    assert cache.candidate(str(repo), "main").version == Version("1.1.0")
    assert cache.candidate(str(repo), first_commit).version == Version("1.0.0")
    assert cache.candidate(str(repo), first_commit[:10]).version == Version("1.0.0")


def test_git_branch_follows_remote_but_commit_stays_pinned(tmp_path: Path, repo: Path) -> None:
    cache_dir = tmp_path / "cache"
    assert GitSource(cache_dir, environ=GIT_ENV).candidate(str(repo), "main").version == Version(
        "1.1.0"
    )
    pinned = git(repo, "rev-parse", "HEAD")
    commit(repo, "1.2.0")
    fresh = GitSource(cache_dir, environ=GIT_ENV)  # same cache dir: mirror reused, fetched
    assert fresh.candidate(str(repo), "main").version == Version("1.2.0")
    assert fresh.candidate(str(repo), pinned).version == Version("1.1.0")
    assert len([p for p in next(cache_dir.iterdir()).iterdir() if p.name != "repo.git"]) == 2


def test_git_errors(tmp_path: Path, repo: Path) -> None:
    cache = GitSource(tmp_path / "cache", environ=GIT_ENV)
    with pytest.raises(NotFoundError, match='rev "no-such-tag" not found') as info:
        cache.candidate(str(repo), "no-such-tag")
    assert info.value.hint
    with pytest.raises(NotFoundError, match="cannot clone"):
        cache.candidate(str(tmp_path / "not-a-repo"), "main")
    with pytest.raises(NotFoundError, match="executable was not found"):
        GitSource(tmp_path / "c2", git=str(tmp_path / "no-git")).candidate(str(repo), "main")
    with pytest.raises(NotFoundError, match="not found"):
        cache.candidate(str(repo), "--upload-pack=evil")


def test_resolve_git_dependency_with_nested_path_dep(tmp_path: Path, repo: Path) -> None:
    cache = GitSource(tmp_path / "cache", environ=GIT_ENV)
    res = resolve([git_dep(repo, "v1.0.0")], git=cache, root_dir=tmp_path)
    assert {n: str(c.version) for n, c in res.items()} == {"gitdep": "1.0.0", "inner": "0.5.0"}
    assert res["gitdep"].source.startswith(f"git+{repo}#")
    assert list(res) == ["inner", "gitdep"]
    lock = Lockfile.from_resolution(res)
    assert resolve([git_dep(repo, "v1.0.0")], git=cache, root_dir=tmp_path, locked=lock) == res
    from vudo.errors import DependencyConflictError

    with pytest.raises(DependencyConflictError, match=r"gitdep 1\.0\.0 -> 1\.1\.0"):
        resolve([git_dep(repo, "main")], git=cache, root_dir=tmp_path, locked=lock)


def test_git_requirement_checked_against_checked_out_version(tmp_path: Path, repo: Path) -> None:
    from vudo.errors import DependencyConflictError

    cache = GitSource(tmp_path / "cache", environ=GIT_ENV)
    with pytest.raises(DependencyConflictError, match=r"needs gitdep \^2 from git"):
        resolve([git_dep(repo, "main", "^2")], git=cache)


def test_git_dependency_without_cache_is_explained(repo: Path) -> None:
    with pytest.raises(InvalidInputError, match="no git cache"):
        resolve([git_dep(repo, "main")])


def test_git_dependency_name_must_match(tmp_path: Path, repo: Path) -> None:
    cache = GitSource(tmp_path / "cache", environ=GIT_ENV)
    wrong = Dependency("other", ANY, git=str(repo), rev="main")
    with pytest.raises(InvalidInputError, match='is a Spirit named "gitdep"'):
        resolve([wrong], git=cache)


def test_git_repo_without_manifest(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q", "-b", "main")
    (empty / "README").write_text("hi")
    git(empty, "add", "-A")
    git(empty, "commit", "-q", "-m", "x")
    with pytest.raises(NotFoundError, match=r"no spirit\.toml"):
        GitSource(tmp_path / "cache", environ=GIT_ENV).candidate(str(empty), "main")


def test_git_tree_with_escaping_symlink_is_refused(tmp_path: Path, repo: Path) -> None:
    (repo / "escape").symlink_to("/etc/passwd")
    head = commit(repo, "1.3.0")
    with pytest.raises(InvalidInputError, match="unsafe file"):
        GitSource(tmp_path / "cache", environ=GIT_ENV).candidate(str(repo), head)
