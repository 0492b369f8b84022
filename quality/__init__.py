"""Quality gates run like a user's worst day: fuzzing (`make fuzz`), load and soak (`make soak`),
dependency audit (`make audit`). Each is a script with its own `--help`; a fast subset of each
runs in `make test` (tests/quality)."""
