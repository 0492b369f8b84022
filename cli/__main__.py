"""`python -m cli …` runs the `pcclip` command (e.g. under torchrun)."""

from cli.main import main

main()
