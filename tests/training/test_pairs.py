import pytest

from training.pairs import PairRecord, read_pairs, sample_pairs, split_by_image, write_pairs


@pytest.mark.parametrize(("n", "budget"), [(10, 5), (10, 60), (10, 90), (10, 500), (1000, 2000)])
def test_sampled_pairs_are_distinct_ordered_and_never_self_pairs(n, budget):
    pairs = sample_pairs(n, budget, seed=3)
    assert len(pairs) == min(budget, n * (n - 1))
    assert len(set(pairs)) == len(pairs)
    assert all(i != j and 0 <= i < n and 0 <= j < n for i, j in pairs)


def test_sampling_is_seeded():
    assert sample_pairs(50, 40, seed=1) == sample_pairs(50, 40, seed=1)
    assert sample_pairs(50, 40, seed=1) != sample_pairs(50, 40, seed=2)


def test_both_orders_of_a_pair_may_appear():
    pairs = set(sample_pairs(3, 6, seed=0))
    assert (0, 1) in pairs and (1, 0) in pairs


def test_pairs_file_round_trip(tmp_path):
    records = [
        PairRecord("images/a.png", "images/b.png", "The first is redder.", ("a red", "a blue"),
                   ({"color": "red"}, {"color": "blue"}), "attributes"),
        PairRecord("images/b.png", "images/a.png", "The first is bluer.", ("a blue", "a red")),
    ]
    path = tmp_path / "pairs.jsonl"
    assert write_pairs(path, records) == 2
    assert read_pairs(path) == records


def test_a_malformed_line_is_reported_with_its_number(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text('{"first": "a", "second": "b", "text": "t"}\n{"first": "a"}\n')
    with pytest.raises(ValueError, match=r"pairs.jsonl, line 2"):
        read_pairs(path)


def test_validation_split_shares_no_image_with_training():
    records = [PairRecord(f"{i}", f"{j}", "t") for i, j in sample_pairs(40, 400, seed=0)]
    train, val = split_by_image(records, 0.25, seed=0)
    train_images = {p for r in train for p in (r.first, r.second)}
    val_images = {p for r in val for p in (r.first, r.second)}
    assert train and val
    assert not train_images & val_images
