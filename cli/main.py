"""`pcclip` — one command line over the packages; each command lives with its package."""

from __future__ import annotations

import typer

cli = typer.Typer(
    name="pcclip",
    help="PC-CLIP: CLIP finetuned to reason about differences between images.",
    no_args_is_help=True,
    add_completion=False,
)


def register() -> None:
    """Attach the commands each package owns to the `pcclip` app."""
    from app.commands import generate, index_app, serve
    from training.commands import evaluate, finetune, pairs, train_base

    cli.command("serve", help="Serve the HTTP API (OpenAPI docs at /docs).")(serve)
    cli.command("train-base", help="Train the embedded base model `tiny-base` (the recipe).")(train_base)
    cli.command("pairs", help="Sample image pairs and describe their differences.")(pairs)
    cli.command("finetune", help="PC-CLIP finetuning of a model's text tower on a pairs file.")(finetune)
    cli.command("eval", help="Evaluate a model against a baseline; writes a report.")(evaluate)
    cli.add_typer(index_app, name="index", help="Build or rebuild the retrieval index from image folders.")
    cli.command("generate", help="SDXL images of prompt + Σ wᵢ·editᵢ, PC-CLIP in SDXL's text_encoder slot.")(
        generate
    )


def main() -> None:
    register()
    cli()
