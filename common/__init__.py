"""Helpers with no model, training or serving knowledge, which every package may import."""
