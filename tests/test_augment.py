import math

import torch
import torch.nn.functional as F

from digitrec.augment import AugmentConfig, affine_matrices, random_affine


def _digit_batch(n=8):
    x = torch.zeros(n, 1, 28, 28)
    x[:, :, 6:22, 12:16] = 1.0  # a vertical bar
    return x


def test_disabled_is_identity():
    x = _digit_batch()
    assert random_affine(x, AugmentConfig(0, 0, 0, 0)) is x


def test_shape_range_and_per_sample_randomness():
    x = _digit_batch(16)
    y = random_affine(x, AugmentConfig(rotate=15, shear=10, shift=0.1), torch.Generator().manual_seed(0))
    assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1.0 + 1e-6
    flat = y.flatten(1)
    assert (flat[1:] - flat[:1]).abs().sum(1).min() > 1.0  # every sample got its own transform


def test_same_generator_seed_same_output():
    x = _digit_batch()
    cfg = AugmentConfig()
    a = random_affine(x, cfg, torch.Generator().manual_seed(3))
    b = random_affine(x, cfg, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_shift_only_moves_ink_by_the_drawn_amount():
    # With shift bound s, the matrix's translation lies in [-2s, 2s] (normalised units) and rotation part is identity.
    theta = affine_matrices(1000, AugmentConfig(0, 0, 0.1, 0), torch.zeros(1), torch.Generator().manual_seed(0))
    assert torch.allclose(theta[:, :, :2], torch.eye(2).expand(1000, 2, 2))
    assert theta[:, :, 2].abs().max() <= 0.2 + 1e-6 and theta[:, :, 2].abs().max() > 0.18


def test_rotation_matrix_is_a_rotation():
    theta = affine_matrices(500, AugmentConfig(30, 0, 0, 0), torch.zeros(1), torch.Generator().manual_seed(0))
    rot = theta[:, :, :2]
    assert torch.allclose(torch.linalg.det(rot), torch.ones(500), atol=1e-5)
    angles = torch.atan2(rot[:, 1, 0], rot[:, 0, 0])
    assert angles.abs().max() <= math.radians(30) + 1e-5


def test_ink_mass_roughly_preserved():
    x = _digit_batch(32)
    y = random_affine(x, AugmentConfig(10, 10, 0.05, 0), torch.Generator().manual_seed(1))
    ratio = y.sum((1, 2, 3)) / x.sum((1, 2, 3))
    assert ratio.min() > 0.85 and ratio.max() < 1.2
    assert F.mse_loss(y, x) > 0  # it did something
