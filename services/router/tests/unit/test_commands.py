from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml

from tandem_router.commands import check
from tandem_router.config import ConfigError, load_seeds
from tandem_router.main import serve
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


@pytest.mark.parametrize("broken", ["routing.yaml", "accounts.yaml"])
def test_serve_refuses_an_invalid_configuration_before_connecting(
    tmp_path: Path, broken: str
) -> None:
    for name in ("routing.yaml", "people.yaml", "accounts.yaml"):
        (tmp_path / name).write_text((EXAMPLE / name).read_text())
    doc = yaml.safe_load((tmp_path / broken).read_text())
    if broken == "routing.yaml":
        doc["default_pool"] = "nowhere"
    else:
        doc["accounts"][0]["ae_id"] = "ghost"
    (tmp_path / broken).write_text(yaml.safe_dump(doc))
    # Nothing listens on port 9 (discard): reaching the database or broker would fail otherwise.
    bad = Settings(config_dir=tmp_path, database_url="postgresql://127.0.0.1:9/none")
    with pytest.raises(ConfigError) as raised:
        asyncio.run(serve(bad))
    assert all(broken in problem for problem in raised.value.problems)
