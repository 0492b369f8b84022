"""The paper suite's loaders on tiny fixtures in each data set's real layout (tests/training/paper_fixtures.py)."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch
from paper_fixtures import (
    CIFAR100_FINE,
    cifar_image,
    py2_pickle,
    write_awa2,
    write_cifar100,
    write_coco,
    write_cub,
    write_eurosat,
    write_flowers102,
    write_sun397,
)

from training.evaluation.paper.animals import load_awa2
from training.evaluation.paper.birds import load_cub
from training.evaluation.paper.cifar import load_cifar100, size_groups
from training.evaluation.paper.coco import load_coco_captions
from training.evaluation.paper.datasets import MissingDataset
from training.evaluation.paper.flowers import class_names, colour_groups, load_flowers102
from training.evaluation.paper.folders import load_eurosat, load_sun397


def test_awa2_reads_test_classes_and_indexes_predicates_by_their_numbers(tmp_path):
    files = write_awa2(tmp_path)
    animals = load_awa2(tmp_path)
    images = animals.images
    assert images.classes == ("antelope", "grizzly bear", "killer whale", "beaver")
    assert images.labels == (0, 0, 1, 1, 2, 2)  # beaver is not in testclasses.txt
    assert [path.name for path in images.images[:2]] == files["antelope"]
    assert animals.predicates[14] == "big" and animals.predicates[15] == "small"  # numbered 15 and 16
    big, small = animals.matrix[:, animals.predicates.index("big")], animals.matrix[:, 15]
    assert big.tolist() == [True, True, False, False] and small.tolist() == [False, False, False, True]
    assert len(load_awa2(tmp_path, split="all").images) == 8


def test_awa2_refuses_a_predicate_file_whose_numbers_skip(tmp_path):
    write_awa2(tmp_path)
    path = tmp_path / "Animals_with_Attributes2" / "predicates.txt"
    path.write_text(path.read_text().replace("    15\tbig", "    16\tbig", 1))
    with pytest.raises(ValueError, match="entry 15 is numbered 16"):
        load_awa2(tmp_path)


def test_cifar100_reads_the_python2_batches_labels_and_pixels(tmp_path):
    labels = [CIFAR100_FINE.index(name) for name in ("camel", "hamster", "aquarium_fish")]
    write_cifar100(tmp_path, labels)
    data = load_cifar100(tmp_path, "test")
    assert data.labels == tuple(labels) and len(data.classes) == 100
    assert data.classes[1] == "aquarium fish"
    for i, label in enumerate(labels):
        assert np.array_equal(data.images[i], cifar_image(label, i))  # channel-major rows back to (32, 32, 3)
    assert data.open(0).size == (32, 32)
    assert load_cifar100(tmp_path, "train").labels == (0, 1)
    assert size_groups(data.classes) == {"large": [15, 42, 43, 97], "small": [36, 65, 74, 80]}


class _RunsCommand:
    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def test_a_tampered_cifar_batch_cannot_run_code(tmp_path):
    write_cifar100(tmp_path, [0])
    marker = tmp_path / "pwned"
    (tmp_path / "cifar-100-python" / "test").write_bytes(pickle.dumps(_RunsCommand(f"touch {marker}"), protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="refusing to load global"):
        load_cifar100(tmp_path, "test")
    assert not marker.exists()


def test_a_cifar_batch_whose_data_and_labels_disagree_is_refused(tmp_path):
    write_cifar100(tmp_path, [0, 1])
    path = tmp_path / "cifar-100-python" / "test"
    path.write_bytes(py2_pickle({"fine_labels": b"](K\x00e", "data": b"](e"}))
    with pytest.raises(ValueError, match="expected data"):
        load_cifar100(tmp_path, "test")


def test_flowers102_reads_the_mat_files_and_names_its_colour_classes(tmp_path):
    write_flowers102(tmp_path, [25, 54, 1, 54], test_ids=[1, 2, 4])
    data = load_flowers102(tmp_path, "test")
    assert [path.name for path in data.images] == ["image_00001.jpg", "image_00002.jpg", "image_00004.jpg"]
    assert [data.classes[label] for label in data.labels] == ["grape hyacinth", "sunflower", "sunflower"]
    assert len(load_flowers102(tmp_path, "train")) == 1
    groups = colour_groups(data.classes)
    assert data.classes.index("grape hyacinth") in groups["blue"] and 53 in groups["yellow"]


def test_the_flowers_class_file_is_torchvisions_label_order():
    from torchvision.datasets import Flowers102

    assert class_names() == tuple(Flowers102.classes)


def test_cub_reads_the_test_split_and_reed_captions(tmp_path):
    images = write_cub(tmp_path)
    data = load_cub(tmp_path, "test", captions=True)
    expected = [(path, class_id) for path, class_id, train in images if not train]
    assert [p.relative_to(tmp_path / "CUB_200_2011" / "images").as_posix() for p in data.images] == \
        [path for path, _ in expected]
    assert data.labels == tuple(class_id - 1 for _, class_id in expected)
    assert data.classes == ("Black footed Albatross", "Laysan Albatross", "Sooty Albatross")
    assert len(data.captions[0]) == 10 and data.captions[0][0] == "this bird number 1 of class 1 has feature 0"
    assert len(load_cub(tmp_path, "train")) == 3


def test_cub_without_captions_serves_images_but_not_the_caption_task(tmp_path):
    write_cub(tmp_path, captions=False)
    assert len(load_cub(tmp_path, "test")) == 6
    with pytest.raises(MissingDataset, match="text_c10.*reedscot/cvpr2016"):
        load_cub(tmp_path, "test", captions=True)


def test_eurosat_tests_on_the_authors_seeded_tenth(tmp_path):
    write_eurosat(tmp_path)
    everything = load_eurosat(tmp_path, "all")
    assert everything.classes == ("AnnualCrop", "Forest", "River")
    assert everything.labels == (0,) * 4 + (1,) * 4 + (2,) * 4
    test = load_eurosat(tmp_path, "test")
    expected = sorted(torch.randperm(12, generator=torch.Generator().manual_seed(0)).tolist()[10:])
    assert test.images == tuple(everything.images[i] for i in expected)


def test_sun397_labels_images_by_their_class_folder(tmp_path):
    write_sun397(tmp_path)
    data = load_sun397(tmp_path, "all")
    assert data.classes == ("abbey", "apartment building outdoor", "bedroom")
    for path, label in zip(data.images, data.labels, strict=True):
        assert path.parent.relative_to(tmp_path / "SUN397").as_posix() == \
            ("a/abbey", "a/apartment_building/outdoor", "b/bedroom")[label]


def test_coco_captions_group_by_image_and_skip_uncaptioned_images(tmp_path):
    captions = write_coco(tmp_path)
    data = load_coco_captions(tmp_path)
    assert [path.name for path in data.images] == list(captions)
    assert data.captions[1] == ("a picture number 1", "another view of scene 1")


@pytest.mark.parametrize(("load", "expected"), [
    (load_awa2, "AwA2: expected classes.txt, predicates.txt, predicate-matrix-binary.txt, JPEGImages under"),
    (load_cifar100, "CIFAR-100: expected train, test, meta under"),
    (load_flowers102, "Flowers-102: expected jpg, imagelabels.mat, setid.mat under"),
    (load_cub, "CUB-200-2011: expected images.txt"),
    (load_eurosat, "EuroSAT: expected <Class>/*.jpg folders under"),
    (load_sun397, "SUN397: expected ClassName.txt under"),
    (load_coco_captions, "COCO captions: expected annotations/captions_val2017.json, val2017 under"),
])
def test_a_missing_data_set_says_what_was_expected_where_and_how_to_get_it(tmp_path, load, expected):
    with pytest.raises(MissingDataset) as error:
        load(tmp_path)
    message = str(error.value)
    assert message.startswith(expected) and str(tmp_path) in message and "get it from http" in message
