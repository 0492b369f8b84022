"""Google's emoji as 64 x 64 images, from the npm package `emoji-datasource-google`.

Not installed with pcclip (74 MB): fetch and unpack it into a folder, then pass `root=` or
set PCCLIP_EMOJI_DIR:

    mkdir -p data/emoji && cd data/emoji && npm pack emoji-datasource-google@16.0.0 \
        && tar xzf emoji-datasource-google-16.0.0.tgz

`root` is the unpacked `package/` folder (holding emoji.json) or the folder above it.

Every emoji with a Google image gives one sample, and so does each of its skin-tone
variants (323 emoji have them), which makes natural "same thing, different skin tone"
pairs. The "Component" category (bare skin-tone swatches and hair parts) is left out.
Captions: "an emoji of father christmas", "an emoji of father christmas, dark skin tone",
"an emoji of couple with heart, man, man, light and dark skin tones".
Attributes: {"name", "short_name", "category", "subcategory", "base": the unified code of
the emoji without skin tone, "skin_tone": None or e.g. "dark" / "light and dark"}.
uid "emoji:<unified code>".

Splits: a stable hash of the base emoji's code puts 10% of the emoji in "test"; all skin
tones of one emoji land in the same split.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from training.sources.base import Sample, hashed_split, open_rgb, select_indices

ENV_VAR = "PCCLIP_EMOJI_DIR"
TEST_FRACTION = 0.1
IMAGE_FOLDER = Path("img/google/64")
SKIN_TONES = {
    "1F3FB": "light",
    "1F3FC": "medium-light",
    "1F3FD": "medium",
    "1F3FE": "medium-dark",
    "1F3FF": "dark",
}
_INSTALL = (
    "mkdir -p data/emoji && cd data/emoji && npm pack emoji-datasource-google@16.0.0 "
    "&& tar xzf emoji-datasource-google-16.0.0.tgz"
)


def load(split: str, *, limit: int | None, seed: int, root: str | Path | None = None) -> list[Sample]:
    folder = _package_folder(root)
    entries = [e for e in _entries(folder) if hashed_split(e["base"], TEST_FRACTION) == split]
    samples = []
    for index in select_indices(len(entries), limit, seed):
        entry = entries[index]
        attributes = {key: value for key, value in entry.items() if key not in ("unified", "image")}
        samples.append(
            Sample(
                image=open_rgb(folder / IMAGE_FOLDER / entry["image"]),
                caption=_caption(entry["name"], entry["skin_tone"]),
                attributes=attributes,
                source="emoji",
                uid=f"emoji:{entry['unified']}",
            )
        )
    return samples


def _entries(folder: Path) -> list[dict]:
    """One flat record per image (base emoji and skin-tone variants), in the file's order."""
    with open(folder / "emoji.json", encoding="utf-8") as file:
        table = json.load(file)
    entries = []
    for emoji in table:
        if emoji["category"] == "Component":
            continue
        common = {
            "name": _readable(emoji["name"]),
            "short_name": emoji["short_name"],
            "category": emoji["category"],
            "subcategory": emoji["subcategory"],
            "base": emoji["unified"],
        }
        variants = [(None, emoji)] + list(emoji.get("skin_variations", {}).items())
        for tones, variant in variants:
            if variant.get("has_img_google"):
                entries.append(
                    common | {"skin_tone": _tone_words(tones), "unified": variant["unified"], "image": variant["image"]}
                )
    return entries


def _caption(name: str, tone: str | None) -> str:
    if tone is None:
        return f"an emoji of {name}"
    return f"an emoji of {name}, {tone} skin {'tones' if ' and ' in tone else 'tone'}"


def _readable(name: str) -> str:
    """Unicode names are upper case ("FATHER CHRISTMAS"); flags are already mixed case."""
    name = name.replace(": ", ", ")
    return name.lower() if name.isupper() else name


def _tone_words(tones: str | None) -> str | None:
    """Skin-tone codes in words: "1F3FB-1F3FF" -> "light and dark"; None for the base emoji."""
    if tones is None:
        return None
    words = dict.fromkeys(SKIN_TONES[code] for code in tones.split("-"))  # ordered, no repeats
    return " and ".join(words)


def _package_folder(root: str | Path | None) -> Path:
    candidates = [root, os.environ.get(ENV_VAR)]
    chosen = next((Path(c) for c in candidates if c), None)
    if chosen is None:
        raise FileNotFoundError(f"emoji data not configured: pass root= or set {ENV_VAR}. To fetch it: {_INSTALL}")
    for folder in (chosen, chosen / "package"):
        if (folder / "emoji.json").is_file():
            return folder
    raise FileNotFoundError(f"no emoji.json in {chosen} or {chosen / 'package'}. To fetch it: {_INSTALL}")
