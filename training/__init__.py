"""Offline PC-CLIP training: data sources, pairs, difference texts, finetuning, evaluation."""
