"""Loading sources.yaml from the configuration directory."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import yaml

from tandem_ingest.domain.sources import Source, SourcesError, parse_sources
from tandem_ingest.settings import IngestSettings
from tandem_shared.settings import Environment


def sources_path(settings: IngestSettings) -> Path:
    """Return where the sources file of these settings is."""
    return settings.config_dir / settings.ingest.sources_file


def load_sources(
    settings: IngestSettings, *, environ: Mapping[str, str] | None = None
) -> dict[str, Source]:
    """Read and validate the sources; secrets from the environment, dev_secrets outside prod."""
    path = sources_path(settings)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SourcesError(f"cannot read {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise SourcesError(f"{path} is not valid YAML: {exc}") from exc
    return parse_sources(
        data,
        environ=os.environ if environ is None else environ,
        production=settings.env is Environment.PROD,
    )
