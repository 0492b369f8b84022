"""The paper's evaluation (PAPER.md) on its public data sets: `pcclip eval --suite paper`.

- `datasets`: what every loader returns (`LabeledImages`) and `MissingDataset`, the one-line
  reason a data set is skipped (which files were expected where, and where to get them);
- loaders, each reading its data set's own on-disk layout: `animals` (AwA2), `cifar`
  (CIFAR-100's python batches, read without running pickle code), `flowers` (Flowers-102),
  `birds` (CUB-200-2011 + Reed et al.'s captions), `folders` (EuroSAT, SUN397), `coco`
  (COCO captions val2017);
- `embeddings`: batched, autocast image encoding cached by image-tower identity;
- `texts`: LLM-written difference texts, cached, written by `pcclip pairs`' describers;
- `difference`: the four difference-classification tasks; `classification`: zero-shot,
  comparative prompting (both protocols), the geometry check and COCO retrieval;
- `suite`: runs them all for a model and its baseline; `table`: the report beside the paper's
  reported figures (`training/evaluation/data/paper/reported.json`).
"""
