"""SDXL bridge: open_clip text-tower conversion and embedding arithmetic on prompt conditioning."""
