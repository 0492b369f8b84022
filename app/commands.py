"""`pcclip serve`: run the API with uvicorn. Flags override `PCCLIP_*` environment settings."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from app.settings import Settings
from models import SpecError, parse_spec


def serve(
    model: Annotated[
        str | None, typer.Option(help="Model spec (tiny, tiny-base, openclip:ARCH/TAG, checkpoint folder).")
    ] = None,
    host: Annotated[str | None, typer.Option(help="Interface to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port.")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu or cuda.")] = None,
    index_dir: Annotated[Path | None, typer.Option(help="Folder holding the search index.")] = None,
    sdxl_model: Annotated[str | None, typer.Option(help="SDXL weights for /generate (path or hub id).")] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="Any other setting as NAME=VALUE (e.g. --set max_batch=32); see PCCLIP_* in the README.",
        ),
    ] = None,
) -> None:
    """Serve the HTTP API; the model loads in the background while /health already answers."""
    import uvicorn

    from app.main import create_app

    flags = {"model": model, "host": host, "port": port, "device": device, "index_dir": index_dir}
    settings = build_settings(**flags, sdxl_model=sdxl_model, **parse_assignments(set_ or []))
    # uvicorn configures only its own loggers; show the app's (model loading, batch failures) too.
    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s:     %(name)s: %(message)s")
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        timeout_graceful_shutdown=10,
    )


def parse_assignments(assignments: list[str]) -> dict[str, str]:
    """["max_batch=32", ...] → {"max_batch": "32"}; names are the settings' (PCCLIP_ prefix optional)."""
    out = {}
    for assignment in assignments:
        name, sep, value = assignment.partition("=")
        name = name.strip().lower().removeprefix("pcclip_")
        if not sep or name not in Settings.model_fields:
            known = ", ".join(Settings.model_fields)
            raise typer.BadParameter(
                f"{assignment!r}: expected NAME=VALUE with NAME one of {known}", param_hint="--set"
            )
        out[name] = value
    return out


def build_settings(**flags: object) -> Settings:
    """Environment settings with the given (non-None) flags on top; a bad value exits with a message."""
    overrides = {name: value for name, value in flags.items() if value is not None}
    try:
        settings = Settings(**overrides)
        parse_spec(settings.model)  # fail now, not minutes later in the loader thread
    except SpecError as exc:
        raise typer.BadParameter(str(exc), param_hint="--model") from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise typer.BadParameter(problems) from None
    return settings
