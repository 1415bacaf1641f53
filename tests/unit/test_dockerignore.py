"""The image's build context (.dockerignore) admits what the Dockerfile copies and nothing else."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_build_context_is_what_the_dockerfile_copies() -> None:
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    # Everything is left out first; the exceptions after it are all that is sent.
    assert patterns[0] == "*"
    admitted = {p[1:].removeprefix("./").rstrip("/") for p in patterns if p.startswith("!")}
    copied = set()
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and not any(w.startswith("--from=") for w in words):
            copied |= {w.removeprefix("./").rstrip("/") for w in words[1:-1] if not w.startswith("--")}
    assert admitted == copied
    # Last, so that it wins over the exceptions: the image compiles its own bytecode, not a local run's.
    assert patterns[-1] == "**/__pycache__"
