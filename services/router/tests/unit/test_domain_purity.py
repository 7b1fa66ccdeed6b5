"""The domain package stays pure: no module of it imports I/O (tandem_shared.purity says what)."""

from __future__ import annotations

from pathlib import Path

import tandem_router.domain
from tandem_shared.purity import impure_imports

DOMAIN = Path(tandem_router.domain.__file__).parent


def test_the_domain_has_modules() -> None:
    assert len(list(DOMAIN.glob("*.py"))) > 3


def test_no_domain_module_imports_io() -> None:
    assert impure_imports(DOMAIN, "tandem_router") == {}
