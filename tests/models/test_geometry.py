import pytest
import torch

from models import geometry


def unit(*values: float) -> torch.Tensor:
    vector = torch.tensor(values, dtype=torch.float32)
    return vector / vector.norm()


def test_difference_score_flips_sign_when_the_pair_is_swapped():
    torch.manual_seed(0)
    first, second, texts = torch.randn(5, 8), torch.randn(5, 8), torch.randn(3, 8)
    forward = geometry.difference_scores(first, second, texts)
    backward = geometry.difference_scores(second, first, texts)
    assert forward.shape == (5, 3)
    torch.testing.assert_close(forward, -backward)


def test_difference_score_is_the_cosine_with_the_normalized_difference():
    first, second = unit(1, 0, 0), unit(0, 1, 0)
    text = torch.tensor([[3.0, -3.0, 0.0]])  # exactly the direction first - second
    score = geometry.difference_scores(first[None], second[None], text)
    assert score.item() == pytest.approx(1.0)


def test_differences_use_normalized_image_embeddings():
    # scaling an image embedding must not change its difference direction
    first, second = torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    scaled = geometry.differences(first * 10, second)
    torch.testing.assert_close(scaled, geometry.differences(first, second))


def test_comparative_update_matches_a_hand_computed_case():
    # classes 0, 1, 2, 3; pairs (0 → 1) and (2 → 1) move class 1; class 3 is in no pair
    prototypes = torch.stack([unit(1, 0, 0), unit(0, 1, 0), unit(0, 0, 1), unit(1, 1, 0)])
    pairs = torch.tensor([[0, 1], [2, 1]])
    comparatives = torch.stack([unit(0, 1, 1), unit(1, 1, 1)])
    alpha = 0.8
    updated = geometry.comparative_update(prototypes, pairs, comparatives, alpha)

    s1 = ((unit(1, 0, 0) - unit(0, 1, 1)) + (unit(0, 0, 1) - unit(1, 1, 1))) / 2
    expected = alpha * unit(0, 1, 0) + (1 - alpha) * s1
    torch.testing.assert_close(updated[1], expected / expected.norm())
    for unchanged in (0, 2, 3):  # first classes of pairs and classes in no pair keep t̂
        torch.testing.assert_close(updated[unchanged], prototypes[unchanged])


def test_comparative_update_with_alpha_one_changes_nothing():
    torch.manual_seed(1)
    prototypes = torch.nn.functional.normalize(torch.randn(4, 6), dim=-1)
    updated = geometry.comparative_update(prototypes, torch.tensor([[0, 3]]), torch.randn(1, 6), alpha=1.0)
    torch.testing.assert_close(updated, prototypes)


def test_comparative_update_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="pairs must be"):
        geometry.comparative_update(torch.randn(3, 4), torch.tensor([[0, 1]]), torch.randn(2, 4))


def test_weighted_sum_normalizes_terms_then_the_sum():
    # a long vector counts as much as a short one: terms are normalized first
    result = geometry.weighted_sum(torch.tensor([[10.0, 0.0], [0.0, 0.1]]), torch.tensor([1.0, 1.0]))
    torch.testing.assert_close(result, unit(1, 1))
    assert result.norm().item() == pytest.approx(1.0)


def test_weighted_sum_that_cancels_out_is_an_error():
    vector = torch.tensor([[1.0, 2.0]])
    with pytest.raises(ValueError, match="cancel"):
        geometry.weighted_sum(torch.cat([vector, vector]), torch.tensor([1.0, -1.0]))


def test_project_orders_embeddings_along_a_direction():
    embeddings = torch.stack([unit(1, 0), unit(1, 1), unit(0, 1)])
    scores = geometry.project(embeddings, torch.tensor([0.0, 5.0]))
    assert scores.argsort().tolist() == [0, 1, 2]
