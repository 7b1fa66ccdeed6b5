from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tandem_router.commands import check
from tandem_router.config import ConfigError, load_seeds
from tandem_shared.directory import load_directory
from tandem_shared.settings import Settings

EXAMPLE = Path(__file__).resolve().parents[4] / "config" / "example"


def settings() -> Settings:
    return Settings(config_dir=EXAMPLE)


def test_check_accepts_the_example_rule_set(capsys: pytest.CaptureFixture[str]) -> None:
    assert check(settings(), []) == 0
    assert "is valid" in capsys.readouterr().out


def test_check_lists_every_problem_and_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = yaml.safe_load((EXAMPLE / "routing.yaml").read_text())
    doc["pools"]["all-sdrs"]["members"] = ["dan.sdr", "nobody.sdr", "mia.marketing"]
    doc["escalation_manager_id"] = "ghost"
    path = tmp_path / "routing.yaml"
    path.write_text(yaml.safe_dump(doc))
    assert check(settings(), ["--rules", str(path)]) == 1
    out = capsys.readouterr().out
    assert "3 problem(s)" in out
    assert "unknown person 'nobody.sdr'" in out and "is a marketer, not a rep" in out
    assert "escalation_manager_id: unknown person 'ghost'" in out


def test_check_reports_invalid_yaml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "routing.yaml"
    path.write_text("version: [unclosed\n")
    assert check(settings(), ["--rules", str(path)]) == 1
    assert "not valid YAML" in capsys.readouterr().out


def test_seeds_must_name_known_people(tmp_path: Path) -> None:
    (tmp_path / "accounts.yaml").write_text(
        yaml.safe_dump({"accounts": [{"account_key": "acme.com", "tier": "1", "ae_id": "ghost"}]})
    )
    directory = load_directory(EXAMPLE / "people.yaml")
    with pytest.raises(ConfigError) as raised:
        load_seeds(tmp_path, directory)
    assert raised.value.problems == [
        f"{tmp_path / 'accounts.yaml'}: acme.com.ae_id: unknown person 'ghost'"
    ]
    assert len(load_seeds(EXAMPLE, directory)) == 5
