from pathlib import Path

import pytest
from pydantic import ValidationError

from tandem_shared.directory import Directory, load_directory

ROOT = Path(__file__).resolve().parents[2]


def test_example_directory_loads_and_resolves_crm_users_and_managers() -> None:
    directory = load_directory(ROOT / "config/example/people.yaml")
    ava = directory.by_crm_user("hs-owner-101")
    assert ava is not None and ava.id == "ava.ae"
    assert [p.id for p in directory.manager_chain("dan.sdr")] == ["sam.manager", "lea.leader"]
    assert directory.by_slack_user("U0AVA0001") == ava
    # Sales-engagement tools name the rep by email, in any case.
    assert directory.by_crm_user(ava.email.upper()) == ava
    assert directory.by_crm_user("nobody@example.com") is None


def _person(pid: str, **extra: object) -> dict[str, object]:
    return {
        "id": pid,
        "name": pid,
        "email": f"{pid}@x.com",
        "role": "sdr",
        "team": "sales",
        **extra,
    }


def test_unknown_manager_reference_is_refused() -> None:
    with pytest.raises(ValidationError, match="unknown person 'ghost'"):
        Directory.model_validate({"people": [_person("a", manager_id="ghost")]})


def test_unknown_time_zone_is_refused() -> None:
    with pytest.raises(ValidationError, match="unknown time zone"):
        Directory.model_validate({"people": [_person("a", timezone="Mars/Olympus")]})


def test_manager_chain_stops_on_cycles() -> None:
    directory = Directory.model_validate(
        {"people": [_person("a", manager_id="b"), _person("b", manager_id="a")]}
    )
    assert [p.id for p in directory.manager_chain("a")] == ["b"]


def test_a_copy_with_other_people_finds_its_own() -> None:
    # Run-time availability replaces people in a copy (availability.py): the copy must not
    # answer from the index of the directory it was copied from.
    directory = load_directory(ROOT / "config/example/people.yaml")
    ava = directory.get("ava.ae")
    assert ava is not None and directory.get("nobody") is None
    away = ava.model_copy(update={"active": False})
    copied = directory.model_copy(
        update={"people": tuple(away if p.id == "ava.ae" else p for p in directory.people)}
    )
    assert copied.get("ava.ae") is away
    assert directory.get("ava.ae") is ava
