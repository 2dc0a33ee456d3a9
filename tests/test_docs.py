"""The README and docs/ stand on their own in a user's clone (issue 16 item 10)."""

from __future__ import annotations

import re
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
USER_FACING = [REPOSITORY / "README.md", *sorted((REPOSITORY / "docs").glob("*.md"))]


def test_readme_points_to_the_projects_own_docs():
    readme = (REPOSITORY / "README.md").read_text()
    assert "(docs/methods.md)" in readme and "(docs/design.md)" in readme


def test_nothing_points_outside_the_repository_for_its_design_or_methods():
    sources = [*USER_FACING, *REPOSITORY.glob("lib/pix2point/**/*.py"), *REPOSITORY.glob("stages/*.py"),
               *REPOSITORY.glob("bench/*.py"), *REPOSITORY.glob("scripts/*"), *REPOSITORY.glob("pipelines/*.yaml"),
               REPOSITORY / "pipeline.yaml", *REPOSITORY.glob("docker/*"), REPOSITORY / "Makefile"]
    outside = [f"{path.relative_to(REPOSITORY)}: {hit}" for path in sources
               for hit in re.findall(r"\.\./shared\S*|\bREFERENCE\.md|\bDESIGN\.md", path.read_text())]
    assert outside == []


def test_every_relative_link_of_the_docs_resolves():
    broken = []
    for document in USER_FACING:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", document.read_text()):
            if "://" not in target and not (document.parent / target).exists():
                broken.append(f"{document.relative_to(REPOSITORY)} -> {target}")
    assert broken == []
