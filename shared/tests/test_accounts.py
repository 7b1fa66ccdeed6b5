import pytest

from tandem_shared.accounts import account_key, registered_domain


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Jane@Mail.Acme.co.uk", "acme.co.uk"),
        ("https://www.acme.com/pricing?x=1", "acme.com"),
        ("eu.globex.com.au", "globex.com.au"),
        ("acme.com", "acme.com"),
        ("bob@gmail.com", None),
        ("someone@outlook.com", None),
        ("localhost", None),
        ("", None),
        (None, None),
    ],
)
def test_account_key_is_the_registered_domain_and_never_a_mailbox_provider(
    value: str | None, expected: str | None
) -> None:
    assert account_key(value) == expected


def test_registered_domain_keeps_personal_domains_for_callers_that_need_them() -> None:
    assert registered_domain("bob@gmail.com") == "gmail.com"
