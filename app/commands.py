"""`pcclip serve`: run the API with uvicorn. Flags override `PCCLIP_*` environment settings."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import closing, contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError

from app.settings import Settings
from models import SpecError, parse_spec

if TYPE_CHECKING:
    from app.index.ray_build import RayOptions
    from models.generation.pipeline import Edit

log = logging.getLogger(__name__)


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

    from app.connections import AcceptErrorFilter, fit_open_files_limit, guarded_protocol
    from app.main import create_app

    flags = {"model": model, "host": host, "port": port, "device": device, "index_dir": index_dir}
    settings = build_settings(**flags, sdxl_model=sdxl_model, **parse_assignments(set_ or []))
    # uvicorn configures only its own loggers; show the app's (model loading, batch failures) too.
    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s:     %(name)s: %(message)s")
    logging.getLogger("asyncio").addFilter(AcceptErrorFilter())
    if warning := fit_open_files_limit(settings.max_connections):
        log.warning(warning)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        http=guarded_protocol(settings.max_connections, settings.head_timeout_s),
        timeout_keep_alive=settings.keep_alive_s,
        # Forwarded headers only from the configured proxies (uvicorn trusts 127.0.0.1 by default).
        proxy_headers=bool(settings.forwarded_allow_ips),
        forwarded_allow_ips=settings.forwarded_allow_ips,
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
    overrides: dict[str, Any] = {name: value for name, value in flags.items() if value is not None}  # pydantic checks
    try:
        settings = Settings(**overrides)
        parse_spec(settings.model)  # fail now, not minutes later in the loader thread
    except SpecError as exc:
        raise typer.BadParameter(str(exc), param_hint="--model") from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise typer.BadParameter(problems) from None
    return settings


def generate(
    prompt: Annotated[str, typer.Argument(help="What to draw.")],
    edit: Annotated[
        list[str] | None,
        typer.Option("--edit", help='A weighted edit "TEXT=WEIGHT" (weight 1 when omitted); repeatable.'),
    ] = None,
    negative_prompt: Annotated[str | None, typer.Option(help="Plain negative prompt.")] = None,
    steps: Annotated[int, typer.Option(min=1, help="Denoising steps.")] = 30,
    guidance: Annotated[float, typer.Option(min=0, help="Classifier-free guidance scale.")] = 5.0,
    width: Annotated[int, typer.Option(min=8, help="Width in pixels (multiple of 8).")] = 1024,
    height: Annotated[int, typer.Option(min=8, help="Height in pixels (multiple of 8).")] = 1024,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the first image; image i uses seed + i.")] = 0,
    count: Annotated[int, typer.Option(min=1, help="Images to generate.")] = 1,
    model: Annotated[str | None, typer.Option(help="PC-CLIP model spec for SDXL's text_encoder slot.")] = None,
    sdxl_model: Annotated[
        str | None, typer.Option(help="SDXL weights (folder or hub id); default PCCLIP_SDXL_MODEL.")
    ] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu or cuda.")] = None,
    out: Annotated[Path, typer.Option(help="Folder for the PNGs and generate.json.")] = Path("generated"),
    compare_base: Annotated[
        bool, typer.Option(help="Also generate every image with the pipeline's own text encoders (same seeds).")
    ] = False,
    target: Annotated[
        str | None, typer.Option(help='Score every image against this text (e.g. "a snowy forest").')
    ] = None,
    judge: Annotated[str | None, typer.Option(help="Model spec that scores against --target; default --model.")] = None,
) -> None:
    """Generate SDXL images of `prompt + Σ wᵢ · editᵢ`, write PNGs and a JSON report."""
    from tqdm import tqdm

    from models import create_model
    from models.generation.compare import build_arms, run_comparison, write_comparison
    from models.generation.pipeline import GenerationRequest, load_pipeline

    # 1. Settings and inputs (the environment's PCCLIP_* with these flags on top)
    settings = build_settings(model=model, device=device, sdxl_model=sdxl_model)
    if settings.sdxl_model is None:
        raise typer.BadParameter(
            "no SDXL weights: give --sdxl-model or set PCCLIP_SDXL_MODEL", param_hint="--sdxl-model"
        )
    request = GenerationRequest(
        prompt=prompt, edits=tuple(_parse_edit(text) for text in edit or []), negative_prompt=negative_prompt,
        steps=steps, guidance=guidance, width=width, height=height, seed=seed,
    )

    # 2. Load the PC-CLIP model and SDXL; the model takes the text_encoder slot when it fits
    encoder = create_model(settings.model, device=settings.device)
    arms = build_arms(load_pipeline(settings.sdxl_model, device=settings.device), encoder, compare_base=compare_base)
    if not arms["pcclip"].pcclip_in_slot:
        typer.echo(f"note: {arms['pcclip'].fallback_reason}; using the pipeline's own encoders", err=True)
    scorer = create_model(judge, device=settings.device) if target and judge else encoder

    # 3. Generate every arm with the same seeds and score it; 4. report and a one-line summary
    with tqdm(total=len(arms) * count * steps, desc="generate", unit="step") as bar:
        comparison = run_comparison(
            arms, request, count=count, target=target, judge=scorer if target else None, on_step=lambda: bar.update(1)
        )
    models = {"model": settings.model, "judge": scorer.spec if target else None, "sdxl_model": settings.sdxl_model}
    write_comparison(comparison, out, models)
    typer.echo(f"{len(comparison.images)} images in {out}" + "".join(f"; {s}" for s in comparison.score_parts()))


def _parse_edit(text: str) -> Edit:
    """ "snowier=0.8" → Edit("snowier", 0.8); "snowier" → weight 1; a non-number after "=" is text."""
    from models.generation.pipeline import Edit

    body, sep, weight = text.rpartition("=")
    if sep:
        try:
            return Edit(body.strip(), float(weight))
        except ValueError:
            pass
    return Edit(text.strip(), 1.0)


# --- pcclip index build | rebuild ------------------------------------------------------------

index_app = typer.Typer(
    help="Build the search index from a folder of images, or re-embed it with another model. "
    "Run these while no server has the index open.",
    no_args_is_help=True,
)


class Engine(StrEnum):
    """Where `pcclip index build` embeds."""

    local = "local"
    ray = "ray"


@index_app.command("build")
def index_build(
    source: Annotated[
        Path,
        typer.Argument(
            exists=True,
            help="A folder of images (searched recursively), or a .jsonl / .parquet listing of "
            '{"path", "id"?, "metadata"?} rows.',
        ),
    ],
    index_dir: Annotated[Path | None, typer.Option(help="The index folder; default PCCLIP_INDEX_DIR.")] = None,
    model: Annotated[str | None, typer.Option(help="Model spec; default PCCLIP_MODEL.")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu or cuda (the local engine's).")] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Images per forward pass.")] = 32,
    recursive: Annotated[bool, typer.Option(help="Include subfolders.")] = True,
    engine: Annotated[Engine, typer.Option(help="local: this process; ray: Ray Data (the ray extra).")] = Engine.local,
    ray_address: Annotated[
        str | None, typer.Option(help="Ray cluster to join (e.g. auto, ray://HOST:10001); default: start one here.")
    ] = None,
    num_cpus: Annotated[
        float | None, typer.Option(min=0.01, help="Ray: CPUs per model actor and decode task (fractional by default).")
    ] = None,
    num_gpus: Annotated[float | None, typer.Option(min=0, help="Ray: GPUs per model actor (> 0: on GPU).")] = None,
    actors: Annotated[int | None, typer.Option(min=1, help="Ray: model actors embedding at once.")] = None,
) -> None:
    """Embed every image of SOURCE into the index (a folder's ids are folder-relative paths,
    `a/b.jpg` → `a:b.jpg`). Resumable: ids already indexed are skipped."""
    from app.index import index_location, open_backend
    from app.index.build import build_index
    from app.index.sources import SourceError, read_source
    from models import create_model

    # 1. Inputs first: the engine, then every row of the source
    ray = _ray_options(ray_address, num_cpus, num_gpus, actors, batch_size) if engine == "ray" else None
    settings = build_settings(model=model, device=device, index_dir=index_dir)
    try:
        rows = read_source(source, recursive=recursive)
    except SourceError as exc:
        raise typer.BadParameter(str(exc), param_hint="SOURCE") from None
    # 2. The model (on Ray, this copy stamps the index and lends its preprocessing to the tasks)
    encoder = create_model(settings.model, device=settings.device if engine == "local" else "cpu")
    with _index_errors("index build"), closing(
        open_backend(settings, fingerprint=encoder.fingerprint, embed_dim=encoder.embed_dim, spec=encoder.spec)
    ) as store:
        # 3. Embed and write
        if ray is not None:
            from app.index.ray_build import build_index_ray

            summary = build_index_ray(store, encoder, rows, ray)
        else:
            summary = build_index(store, encoder, rows, batch_size=batch_size)
    typer.echo(f"index {index_location(settings)}: {summary.line()}")


def _ray_options(
    address: str | None, num_cpus: float | None, num_gpus: float | None, actors: int | None, batch_size: int
) -> RayOptions:
    """The Ray build's options (one not given keeps RayOptions' default); without the ray extra,
    a usage error naming it."""
    from app.index.ray_build import RayOptions, require_ray

    try:
        require_ray()
    except ImportError as exc:
        raise typer.BadParameter(str(exc), param_hint="--engine") from None
    default = RayOptions()
    return RayOptions(
        address,
        num_cpus=default.num_cpus if num_cpus is None else num_cpus,
        num_gpus=default.num_gpus if num_gpus is None else num_gpus,
        actors=default.actors if actors is None else actors,
        batch_size=batch_size,
    )


MILVUS_REBUILD = (
    "re-embeds a FAISS index folder (PCCLIP_INDEX_BACKEND=faiss); it does not rebuild a Milvus collection. "
    "For a new model, point PCCLIP_MILVUS_COLLECTION at a new collection and index the images into it again "
    "(`pcclip index build SOURCE`)."
)


@index_app.command("rebuild")
def index_rebuild(
    index_dir: Annotated[Path | None, typer.Option(help="The index folder; default PCCLIP_INDEX_DIR.")] = None,
    model: Annotated[str | None, typer.Option(help="Model spec to re-embed with; default PCCLIP_MODEL.")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu or cuda.")] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Images per forward pass.")] = 32,
    drop_missing: Annotated[bool, typer.Option(help="Leave out items whose source image is gone.")] = False,
) -> None:
    """Re-embed every indexed item with MODEL from its stored source image, and stamp the index
    with MODEL's fingerprint (after a model change the server refuses the old index)."""
    from app.index import AnnParams
    from app.index.build import rebuild_index
    from models import create_model

    settings = build_settings(model=model, device=device, index_dir=index_dir)
    if settings.index_backend != "faiss":
        typer.echo(f"index rebuild: {MILVUS_REBUILD}", err=True)
        raise typer.Exit(1)
    encoder = create_model(settings.model, device=settings.device)
    with _index_errors("index rebuild"):
        summary = rebuild_index(
            settings.index_dir,
            encoder,
            params=AnnParams.from_settings(settings),
            batch_size=batch_size,
            drop_missing=drop_missing,
        )
    typer.echo(f"index {settings.index_dir} re-embedded with {encoder.spec}: {summary.line()}")


@contextmanager
def _index_errors(command: str) -> Iterator[None]:
    """An index that cannot be opened (busy, another model's, damaged) or rebuilt: its message, exit 1."""
    from app.errors import ServiceError

    try:
        yield
    except (ServiceError, RuntimeError) as exc:
        typer.echo(f"{command}: {exc}", err=True)
        raise typer.Exit(1) from None
