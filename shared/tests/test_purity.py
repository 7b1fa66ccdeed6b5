"""The purity check catches I/O imports, direct or through the service's shell."""

from __future__ import annotations

from pathlib import Path

from tandem_shared.purity import impure_imports


def test_io_imports_and_the_services_shell_are_caught(tmp_path: Path) -> None:
    (tmp_path / "pure.py").write_text(
        "import re\nfrom tandem_shared.events import Tier\nfrom svc.domain.rules import R\n"
    )
    (tmp_path / "reads.py").write_text("from pathlib import Path\nimport sqlalchemy.orm\n")
    (tmp_path / "shell.py").write_text(
        "from svc.adapters import repository\nfrom tandem_shared import uow\n"
    )
    assert impure_imports(tmp_path, "svc") == {
        "reads.py": ["pathlib", "pathlib.Path", "sqlalchemy.orm"],
        "shell.py": ["svc.adapters", "svc.adapters.repository", "tandem_shared.uow"],
    }
