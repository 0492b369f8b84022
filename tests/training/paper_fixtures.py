"""Tiny copies of the paper's data sets in their real on-disk layouts, written by the tests.

Each writer puts a few small images under the real file names with the real index and label
files (plain-text indexes, a Python 2 CIFAR pickle byte for byte as cPickle wrote it, .mat files
through scipy.io.savemat, COCO's JSON) and returns what a loader must read back.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
from PIL import Image


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# predicates.txt of AwA2 (numbered 1-85) and the fine label names of CIFAR-100's meta, in order
AWA2_PREDICATES = _words(
    "black white blue brown gray orange red yellow patches spots stripes furry hairless toughskin big small "
    "bulbous lean flippers hands hooves pads paws longleg longneck tail chewteeth meatteeth buckteeth strainteeth "
    "horns claws tusks smelly flys hops swims tunnels walks fast slow strong weak muscle bipedal quadrapedal "
    "active inactive nocturnal hibernate agility fish meat plankton vegetation insects forager grazer hunter "
    "scavenger skimmer stalker newworld oldworld arctic coastal desert bush plains forest fields jungle mountains "
    "ocean ground water tree cave fierce timid smart group solitary nestspot domestic"
)
CIFAR100_FINE = _words(
    "apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus butterfly camel can "
    "castle caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile cup dinosaur dolphin "
    "elephant flatfish forest fox girl hamster house kangaroo keyboard lamp lawn_mower leopard lion lizard lobster "
    "man maple_tree motorcycle mountain mouse mushroom oak_tree orange orchid otter palm_tree pear pickup_truck "
    "pine_tree plain plate poppy porcupine possum rabbit raccoon ray road rocket rose sea seal shark shrew skunk "
    "skyscraper snail snake spider squirrel streetcar sunflower sweet_pepper table tank telephone television "
    "tiger tractor train trout tulip turtle wardrobe whale willow_tree wolf woman worm"
)
COLOURS = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (220, 220, 40), (240, 240, 240), (20, 20, 20)]


def jpeg(path: Path, index: int, side: int = 16) -> None:
    """A small distinct image: a solid colour with a lighter square whose place depends on `index`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.full((side, side, 3), COLOURS[index % len(COLOURS)], dtype=np.uint8)
    corner = (index * 3) % (side - 4)
    pixels[corner:corner + 4, corner:corner + 4] = 255
    Image.fromarray(pixels).save(path, format="JPEG", quality=95)


# --- AwA2 ---------------------------------------------------------------------------------------

AWA2_CLASSES = ("antelope", "grizzly+bear", "killer+whale", "beaver")
AWA2_TEST = ("antelope", "grizzly+bear", "killer+whale")  # beaver is a training class
AWA2_ATTRIBUTES = {  # class -> attributes it has (the rest are 0)
    "antelope": {"brown", "big", "hooves", "smelly"},
    "grizzly+bear": {"brown", "big", "claws", "fish"},
    "killer+whale": {"black", "white", "flippers", "swims"},
    "beaver": {"brown", "small", "tail"},
}


def write_awa2(root: Path, per_class: int = 2) -> dict[str, list[str]]:
    """Animals_with_Attributes2/ as AwA2-data.zip unpacks; returns {class: image file names}."""
    folder = root / "Animals_with_Attributes2"
    folder.mkdir(parents=True)
    (folder / "classes.txt").write_text("".join(f"{i:>6}\t{name}\n" for i, name in enumerate(AWA2_CLASSES, 1)))
    (folder / "predicates.txt").write_text("".join(f"{i:>6}\t{name}\n" for i, name in enumerate(AWA2_PREDICATES, 1)))
    rows = [" ".join("1" if p in AWA2_ATTRIBUTES[c] else "0" for p in AWA2_PREDICATES) for c in AWA2_CLASSES]
    (folder / "predicate-matrix-binary.txt").write_text("\n".join(rows) + "\n")
    (folder / "testclasses.txt").write_text("\n".join(AWA2_TEST) + "\n")
    files = {}
    for k, name in enumerate(AWA2_CLASSES):
        files[name] = [f"{name}_{10001 + i}.jpg" for i in range(per_class)]
        for i, file in enumerate(files[name]):
            jpeg(folder / "JPEGImages" / name / file, k * per_class + i)
    return files


# --- CIFAR-100: Python 2 pickles, as cPickle (protocol 2) wrote them ------------------------------


def _py2_str(value: bytes) -> bytes:
    """A Python 2 str: SHORT_BINSTRING, or BINSTRING past 255 bytes."""
    if len(value) < 256:
        return b"U" + bytes([len(value)]) + value
    return b"T" + struct.pack("<i", len(value)) + value


def _py2_int(value: int) -> bytes:
    return b"K" + bytes([value]) if 0 <= value < 256 else b"J" + struct.pack("<i", value)


def _py2_list(items: list[bytes]) -> bytes:
    return b"](" + b"".join(items) + b"e"  # EMPTY_LIST, MARK, items…, APPENDS


def _py2_uint8_array(array: np.ndarray) -> bytes:
    """numpy's pickle of a uint8 array under Python 2: _reconstruct(ndarray, (0,), 'b') then
    __setstate__((1, shape, dtype('u1'), False, data))."""
    shape = b"(" + b"".join(_py2_int(n) for n in array.shape) + b"t"
    dtype = (b"cnumpy\ndtype\n" + _py2_str(b"u1") + b"K\x00K\x01\x87R"
             + b"(K\x03" + _py2_str(b"|") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb")
    return (b"cnumpy.core.multiarray\n_reconstruct\n" + b"cnumpy\nndarray\n" + b"K\x00\x85" + _py2_str(b"b")
            + b"\x87R" + b"(K\x01" + shape + dtype + b"\x89" + _py2_str(array.tobytes()) + b"tb")


def py2_pickle(entries: dict[str, bytes]) -> bytes:
    """PROTO 2, a dict of Python 2 str keys to already-pickled values, STOP."""
    body = b"".join(_py2_str(key.encode()) + value for key, value in entries.items())
    return b"\x80\x02}(" + body + b"u."


def cifar_image(label: int, index: int) -> np.ndarray:
    """A (32, 32, 3) image whose red channel encodes the label and green the index."""
    image = np.zeros((32, 32, 3), dtype=np.uint8)
    image[..., 0], image[..., 1], image[..., 2] = label, index, np.arange(32, dtype=np.uint8)[None, :]
    return image


def write_cifar100(root: Path, test_labels: list[int], train_labels: list[int] = (0, 1)) -> None:
    """cifar-100-python/{train,test,meta} as cifar-100-python.tar.gz unpacks."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    for split, labels in (("train", list(train_labels)), ("test", test_labels)):
        images = np.stack([cifar_image(label, i) for i, label in enumerate(labels)])
        rows = images.transpose(0, 3, 1, 2).reshape(len(labels), -1)  # 1024 R, 1024 G, 1024 B per row
        (folder / split).write_bytes(py2_pickle({
            "filenames": _py2_list([_py2_str(f"img_{i}.png".encode()) for i in range(len(labels))]),
            "batch_label": _py2_str(f"{split} batch 1 of 1".encode()),
            "fine_labels": _py2_list([_py2_int(label) for label in labels]),
            "coarse_labels": _py2_list([_py2_int(0) for _ in labels]),
            "data": _py2_uint8_array(np.ascontiguousarray(rows)),
        }))
    (folder / "meta").write_bytes(py2_pickle({
        "fine_label_names": _py2_list([_py2_str(name.encode()) for name in CIFAR100_FINE]),
        "coarse_label_names": _py2_list([_py2_str(f"coarse_{i}".encode()) for i in range(20)]),
    }))


# --- Flowers-102 ----------------------------------------------------------------------------------


def write_flowers102(root: Path, labels: list[int], test_ids: list[int]) -> None:
    """flowers-102/{jpg/image_XXXXX.jpg, imagelabels.mat, setid.mat}; `labels` are 1-based, per image id."""
    from scipy.io import savemat

    folder = root / "flowers-102"
    for image_id in range(1, len(labels) + 1):
        jpeg(folder / "jpg" / f"image_{image_id:05d}.jpg", image_id)
    savemat(folder / "imagelabels.mat", {"labels": np.array([labels], dtype=np.uint8)})
    train = [i for i in range(1, len(labels) + 1) if i not in test_ids]
    savemat(folder / "setid.mat", {"trnid": np.array([train[:1]], dtype=np.uint16),
                                   "valid": np.array([train[1:]], dtype=np.uint16),
                                   "tstid": np.array([test_ids], dtype=np.uint16)})


# --- CUB-200-2011 + Reed et al. captions -----------------------------------------------------------

CUB_CLASSES = ("001.Black_footed_Albatross", "002.Laysan_Albatross", "003.Sooty_Albatross")


def write_cub(root: Path, per_class: int = 3, captions: bool = True) -> list[tuple[str, int, bool]]:
    """CUB_200_2011/ and cvpr2016_cub/text_c10/; returns (relative image path, class id, is train) per image id."""
    folder = root / "CUB_200_2011"
    folder.mkdir(parents=True)
    images = []
    for class_id, name in enumerate(CUB_CLASSES, 1):
        bird = name.split(".")[1]
        for i in range(per_class):
            images.append((f"{name}/{bird}_{i + 1:04d}_{100 + i}.jpg", class_id, i == 0))
    (folder / "classes.txt").write_text("".join(f"{i} {name}\n" for i, name in enumerate(CUB_CLASSES, 1)))
    (folder / "images.txt").write_text("".join(f"{i} {path}\n" for i, (path, _, _) in enumerate(images, 1)))
    (folder / "image_class_labels.txt").write_text("".join(f"{i} {c}\n" for i, (_, c, _) in enumerate(images, 1)))
    (folder / "train_test_split.txt").write_text("".join(f"{i} {int(t)}\n" for i, (_, _, t) in enumerate(images, 1)))
    for k, (path, class_id, _) in enumerate(images):
        jpeg(folder / "images" / path, k)
        if captions:
            caption_file = root / "cvpr2016_cub" / "text_c10" / Path(path).with_suffix(".txt")
            caption_file.parent.mkdir(parents=True, exist_ok=True)
            caption_file.write_text("".join(f"this bird number {k} of class {class_id} has feature {j}\n"
                                            for j in range(10)))
    return images


# --- EuroSAT, SUN397, COCO ---------------------------------------------------------------------------

EUROSAT_CLASSES = ("AnnualCrop", "Forest", "River")


def write_eurosat(root: Path, per_class: int = 4) -> None:
    for k, name in enumerate(EUROSAT_CLASSES):
        for i in range(per_class):
            jpeg(root / "eurosat" / "2750" / name / f"{name}_{i + 1}.jpg", k * per_class + i)


SUN397_ENTRIES = ("/a/abbey", "/a/apartment_building/outdoor", "/b/bedroom")


def write_sun397(root: Path, per_class: int = 4) -> None:
    folder = root / "SUN397"
    folder.mkdir(parents=True)
    (folder / "ClassName.txt").write_text("".join(entry + "\n" for entry in SUN397_ENTRIES))
    for k, entry in enumerate(SUN397_ENTRIES):
        for i in range(per_class):
            jpeg(folder / entry.strip("/") / f"sun_{'abcdefgh'[k]}{'abcdefgh'[i]}xyz.jpg", k * per_class + i)


def write_coco(root: Path, images: int = 4) -> dict[str, list[str]]:
    """coco/annotations/captions_val2017.json + coco/val2017/; one more image without captions."""
    folder = root / "coco"
    entries, annotations, captions = [], [], {}
    for i in range(images + 1):
        image_id = 139 + 10 * i
        name = f"{image_id:012d}.jpg"
        jpeg(folder / "val2017" / name, i)
        entries.append({"id": image_id, "file_name": name, "height": 16, "width": 16})
        if i < images:
            captions[name] = [f"a picture number {i}", f"another  view of scene {i} "]
            annotations += [{"id": 1000 + 2 * i + j, "image_id": image_id, "caption": text}
                            for j, text in enumerate(captions[name])]
    (folder / "annotations").mkdir(parents=True)
    payload = {"info": {}, "licenses": [], "images": entries, "annotations": annotations}
    (folder / "annotations" / "captions_val2017.json").write_text(json.dumps(payload))
    return captions


def write_all(root: Path) -> None:
    """Every data set of the suite, small enough for the tiny models to run in seconds."""
    write_awa2(root, per_class=3)
    index = {name: CIFAR100_FINE.index(name) for name in ("camel", "leopard", "hamster", "rabbit", "apple")}
    write_cifar100(root, [index[name] for name in ("camel", "leopard", "hamster", "rabbit", "apple")] * 3)
    grape, sunflower, primrose = 25, 54, 1  # 1-based: grape hyacinth (blue), sunflower (yellow), pink primrose
    write_flowers102(root, [grape, sunflower, primrose] * 4, test_ids=list(range(1, 10)))
    write_cub(root)
    write_eurosat(root)
    write_sun397(root)
    write_coco(root)
