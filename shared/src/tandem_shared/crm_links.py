"""Links back to the CRM: the web page of a record, for the "Open in CRM" buttons.

HubSpot's record pages are `{app}/contacts/{portalId}/record/{objectTypeId}/{recordId}` for
every object (contacts 0-1, companies 0-2, deals 0-3; `app` is https://app.hubspot.com, or
https://app-eu1.hubspot.com for accounts in the EU data centre). Salesforce's Lightning record
pages are `https://{MyDomain}.lightning.force.com/lightning/r/{sObject}/{recordId}/view`, the
org's My Domain taken from its instance URL (`https://{MyDomain}.my.salesforce.com`, which is
what Outbound Messages carry in EnterpriseUrl/PartnerUrl).
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

HUBSPOT_APP_URL = "https://app.hubspot.com"
HUBSPOT_OBJECT_TYPE_IDS = {"contact": "0-1", "company": "0-2", "deal": "0-3"}

# Hosts of Salesforce orgs: a URL a delivery names is trusted for links only on one of these.
SALESFORCE_DOMAINS = (".salesforce.com", ".force.com")
# The instance host's suffix -> the Lightning host's (production, sandbox, Developer Edition...).
_LIGHTNING_SUFFIXES = (
    (".sandbox.my.salesforce.com", ".sandbox.lightning.force.com"),
    (".develop.my.salesforce.com", ".develop.lightning.force.com"),
    (".my.salesforce.com", ".lightning.force.com"),
)


def hubspot_record_url(
    *, portal_id: str | None, object_type_id: str, record_id: str, app_url: str = HUBSPOT_APP_URL
) -> str | None:
    """Return a HubSpot record's page; None without a numeric portal id to put in it."""
    if not portal_id or not portal_id.isdigit() or not record_id:
        return None
    return (
        f"{app_url.rstrip('/')}/contacts/{portal_id}/record/"
        f"{quote(object_type_id, safe='')}/{quote(record_id, safe='')}"
    )


def salesforce_record_url(*, instance_url: str | None, sobject: str, record_id: str) -> str | None:
    """Return a Salesforce record's Lightning page; None without an https instance URL."""
    base = lightning_base_url(instance_url)
    if base is None or not sobject or not record_id:
        return None
    return f"{base}/lightning/r/{quote(sobject, safe='')}/{quote(record_id, safe='')}/view"


def salesforce_org_url(url: str | None) -> str | None:
    """Return a URL a Salesforce delivery names when it is an https URL of a Salesforce host.

    A configured instance URL may be any host (a proxy, a custom domain); one read from a
    message must not turn the alerts' links into links to somewhere else.
    """
    if not url:
        return None
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    return url if parts.scheme == "https" and host.endswith(SALESFORCE_DOMAINS) else None


def lightning_base_url(instance_url: str | None) -> str | None:
    """Return the Lightning origin of an org from its instance (or any of its) URL.

    A My Domain host maps to its Lightning host; any other https host is kept as it is
    (Salesforce redirects /lightning/r/ there to the Lightning page).
    """
    if not instance_url:
        return None
    parts = urlsplit(instance_url.strip())
    host = (parts.hostname or "").lower()
    if parts.scheme != "https" or not host:
        return None
    for instance, lightning in _LIGHTNING_SUFFIXES:
        if host.endswith(instance):
            return f"https://{host.removesuffix(instance)}{lightning}"
    port = f":{parts.port}" if parts.port else ""
    return f"https://{host}{port}"
