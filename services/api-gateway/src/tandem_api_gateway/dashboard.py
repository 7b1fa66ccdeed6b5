"""The dashboard: one server-rendered page and a small script, nothing loaded from elsewhere."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from tandem_api_gateway.api.context import GatewayDep

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
static_files = StaticFiles(directory=HERE / "static")

router = APIRouter(include_in_schema=False)

# Nothing external can load: scripts, styles and connections stay on this origin.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'; form-action 'none'"
)


@router.get("/", response_class=HTMLResponse)
async def dashboard(request: Request, gateway: GatewayDep) -> HTMLResponse:
    """Serve the dashboard page (the API key comes from ?key=, the session, or dev's default)."""
    response = templates.TemplateResponse(
        request,
        "dashboard.html",
        {"default_key": gateway.settings.dashboard_default_key or ""},
    )
    response.headers["Content-Security-Policy"] = CSP
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response
