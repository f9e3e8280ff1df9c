"""The shrinkage estimator: exact values on a tiny case, population at n = 0, causal sums,
and the per-dimension prior choice."""

from __future__ import annotations

import numpy as np
import pytest

from avemotion.adaptation.estimator import (
    Population,
    Prior,
    causal_sums,
    choose_prior,
    clip_moments,
    normalise,
    normaliser,
)


def test_hand_computed_normaliser_after_two_clips() -> None:
    # population m0 = 1, v0 = 4; prior kappa = 1 clip, nu = 2 clips
    population = Population(np.array([1.0]), np.array([4.0]))
    prior = Prior(1.0, 2.0)
    m1, q1 = clip_moments(np.array([[2.0], [4.0]]))  # mean 3, mean square 10
    m2, q2 = clip_moments(np.array([[0.0], [2.0]]))  # mean 1, mean square 2
    assert (m1[0], q1[0], m2[0], q2[0]) == (3.0, 10.0, 1.0, 2.0)
    mu, var = normaliser(population, prior, 2, m1 + m2, q1 + q2)
    # mu = (1*1 + 3 + 1) / (1 + 2) = 5/3
    # spread = 12 - 2 (5/3) 4 + 2 (5/3)^2 = 38/9 (= q1(mu) + q2(mu) = 25/9 + 13/9)
    # var = (2*4 + 38/9) / (2 + 2) = 55/18
    assert mu[0] == pytest.approx(5 / 3, abs=1e-12)
    assert var[0] == pytest.approx(55 / 18, abs=1e-12)
    out = normalise(np.array([[3.0]]), mu, var)
    assert out.dtype == np.float32
    assert out[0, 0] == pytest.approx((3 - 5 / 3) / np.sqrt(55 / 18), abs=1e-6)


def test_no_earlier_clip_gives_the_population() -> None:
    population = Population(np.array([0.5, -2.0]), np.array([9.0, 0.25]))
    mu, var = normaliser(population, Prior(3.0, 0.5), 0, np.zeros(2), np.zeros(2))
    np.testing.assert_array_equal(mu, population.mean)
    np.testing.assert_array_equal(var, population.var)


def test_many_clips_approach_the_speaker_statistics() -> None:
    rng = np.random.default_rng(0)
    clips = [rng.normal(5.0, 2.0, size=(40, 1)) for _ in range(2000)]
    moments = [clip_moments(c) for c in clips]
    sum_mean = sum(m for m, _ in moments)
    sum_square = sum(q for _, q in moments)
    population = Population(np.array([0.0]), np.array([1.0]))
    mu, var = normaliser(population, Prior(4.0, 4.0), len(clips), sum_mean, sum_square)
    assert mu[0] == pytest.approx(5.0, abs=0.05)
    assert var[0] == pytest.approx(4.0, abs=0.1)


def test_population_from_clip_moments() -> None:
    m, q = clip_moments(np.array([[-1.0], [3.0]]))  # mean 1, mean square 5
    m2, q2 = clip_moments(np.array([[2.0], [4.0]]))  # mean 3, mean square 10
    population = Population.from_moments(np.stack([m, m2]), np.stack([q, q2]))
    # m0 = 2, v0 = 7.5 - 4 = 3.5
    assert population.mean[0] == pytest.approx(2.0)
    assert population.var[0] == pytest.approx(3.5)


def test_causal_sums_use_only_earlier_clips() -> None:
    means = np.array([[1.0], [10.0], [100.0], [1000.0]])
    squares = means * 2
    # speaker A: clips 2 then 0; speaker B: clips 3, 1
    n, sum_mean, sum_square = causal_sums(means, squares, [np.array([2, 0]), np.array([3, 1])])
    np.testing.assert_array_equal(n[:, 0], [1, 1, 0, 0])
    np.testing.assert_array_equal(sum_mean[:, 0], [100.0, 1000.0, 0.0, 0.0])
    np.testing.assert_array_equal(sum_square[:, 0], [200.0, 2000.0, 0.0, 0.0])


def test_prior_choice_is_per_dimension() -> None:
    """Dimension 0 is a speaker offset (trust the speaker quickly: small kappa), dimension 1
    varies from clip to clip around one population value (keep the population: large kappa)."""
    rng = np.random.default_rng(1)
    means, squares, speakers, sequences = [], [], [], []
    for s in range(8):
        offset = rng.normal(0.0, 5.0)
        rows = []
        for _ in range(12):
            clip = np.stack(
                [offset + rng.normal(0, 0.1, 30), rng.normal(0, 3.0) + rng.normal(0, 0.1, 30)], 1
            )
            m, q = clip_moments(clip)
            rows.append(len(means))
            means.append(m)
            squares.append(q)
            speakers.append(s)
        sequences.append(np.array(rows))
    prior, scores = choose_prior(
        np.array(means), np.array(squares), np.array(speakers), sequences, grid=(0.25, 64.0)
    )
    assert prior.kappa.tolist() == [0.25, 64.0]
    assert scores["loglik_per_clip"] >= scores["loglik_per_clip_shared_prior"]
    assert scores["loglik_per_clip"] > scores["loglik_per_clip_unadapted"]


def test_bad_prior_and_single_speaker_refused() -> None:
    with pytest.raises(ValueError, match="kappa"):
        Prior(0.0, 1.0)
    with pytest.raises(ValueError, match="nu"):
        Prior(1.0, np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="at least 2 speakers"):
        choose_prior(np.zeros((2, 1)), np.ones((2, 1)), np.array([0, 0]), [np.array([0, 1])])


def test_population_variance_is_the_typical_speakers() -> None:
    """v0 is the spread around each clip's own speaker mean, not around the global mean."""
    a = clip_moments(np.array([[0.0], [2.0]]))  # speaker A: mean 1, mean square 2
    b = clip_moments(np.array([[4.0], [6.0]]))  # speaker B: mean 5, mean square 26
    means, squares = np.stack([a[0], b[0]]), np.stack([a[1], b[1]])
    population = Population.from_moments(means, squares, np.array([0, 1]))
    # m0 = 3; A: 2 - 2*1*1 + 1 = 1, B: 26 - 2*5*5 + 25 = 1, so v0 = 1 (the global variance is 5)
    assert (population.mean[0], population.var[0]) == (3.0, 1.0)
    assert Population.from_moments(means, squares).var[0] == 5.0
