"""Evaluation of PC-CLIP models the paper's way, on held-out data no training pair used."""
