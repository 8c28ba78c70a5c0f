"""``casedesk connector validate FILE``: exit 0 with a summary, or exit 2 with every problem."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.connections import oauth_manifest

pytestmark = pytest.mark.e2e


def _validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "casedesk", "connector", "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_valid_manifest_exits_0_with_a_summary(tmp_path: Path) -> None:
    path = tmp_path / "acme.yaml"
    path.write_text(yaml.safe_dump(oauth_manifest("acme")))
    done = _validate(path)
    assert done.returncode == 0, done.stderr
    assert "valid connector acme version 1 (Acme API), auth oauth2_code" in done.stdout
    assert "actions: me" in done.stdout


def test_a_bad_manifest_exits_2_listing_every_problem_with_its_path(tmp_path: Path) -> None:
    manifest = oauth_manifest("acme") | {"name": "", "hooks": "not-installed"}
    manifest["actions"]["me"]["request"]["method"] = "BREW"
    manifest["triggers"] = {"poll": {"kind": "polling", "polling": {"items": "a[", "request": {}}}}
    path = tmp_path / "bad.json"
    path.write_text(yaml.safe_dump(manifest))
    done = _validate(path)
    assert done.returncode == 2, done.stdout
    lines = [line.strip() for line in done.stderr.splitlines()]
    paths = {line.split(":", 1)[0] for line in lines[1:]}
    assert paths == {
        "name",
        "hooks",
        "actions.me.request.method",
        "triggers.poll.polling.items",
        "triggers.poll.polling.request.path",
    }
    assert lines[0].endswith("5 problem(s)")


def test_a_file_that_is_not_yaml_or_missing_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("id: [unclosed\n")
    done = _validate(path)
    assert done.returncode == 2
    assert "not YAML or JSON at line" in done.stderr
    assert _validate(tmp_path / "missing.yaml").returncode == 2
