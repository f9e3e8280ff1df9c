"""A posterior model is cross-fitted once per store, clip selection and options."""

from __future__ import annotations

import numpy as np

from avemotion.posterior import RunningMeanSoftmax, cross_fit
from avemotion.posterior.cache import (
    cache_key,
    cache_path,
    cached_cross_fit,
    posterior_cache_root,
)


def test_second_call_reads_the_cache(tiny_store, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("AVEMOTION_CACHE", str(tmp_path))
    calls = []

    def fit():
        calls.append(1)
        return cross_fit(tiny_store, lambda: RunningMeanSoftmax(1e-2), 0), {"note": "fresh"}

    first, extra = cached_cross_fit(tiny_store, {"posterior": "x"}, fit)
    second, extra2 = cached_cross_fit(tiny_store, {"posterior": "x"}, fit)
    assert len(calls) == 1 and extra == extra2 == {"note": "fresh"}
    assert second.folds == first.folds and second.model.calibration == first.model.calibration
    np.testing.assert_array_equal(second.posteriors.proba, first.posteriors.proba)
    for a, b in zip(first.step_logits, second.step_logits):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(
        second.model.posteriors(tiny_store).proba, first.model.posteriors(tiny_store).proba
    )
    # other options, or other clips, are another entry
    cached_cross_fit(tiny_store, {"posterior": "y"}, fit)
    cached_cross_fit(tiny_store.subset(exclude_speakers=["P3"]), {"posterior": "x"}, fit)
    assert len(calls) == 3


def test_an_unreadable_cache_entry_is_refitted(tiny_store, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("AVEMOTION_CACHE", str(tmp_path))
    path = cache_path(cache_key(tiny_store, {"posterior": "x"}))
    path.parent.mkdir(parents=True)
    path.write_bytes(b"garbage")
    fitted, _ = cached_cross_fit(
        tiny_store, {"posterior": "x"}, lambda: (cross_fit(tiny_store), {})
    )
    assert fitted.posteriors.proba.shape == (int(tiny_store.lengths.sum()), 3)


def test_status_and_a_temporary_root(tiny_store, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("AVEMOTION_CACHE", str(tmp_path / "user"))
    fit = lambda: (cross_fit(tiny_store, lambda: RunningMeanSoftmax(1e-2), 0), {})  # noqa: E731
    status: dict[str, str] = {}
    with posterior_cache_root(tmp_path / "bench") as root:
        assert root == tmp_path / "bench"
        cached_cross_fit(tiny_store, {"posterior": "x"}, fit, status)
        assert status == {"cache": "miss"}
        cached_cross_fit(tiny_store, {"posterior": "x"}, fit, status)
        assert status == {"cache": "hit"}
    assert len(list((tmp_path / "bench" / "posteriors").iterdir())) == 1
    assert not (tmp_path / "user").exists()
    # outside the block the user's cache is used again, and it is still cold
    cached_cross_fit(tiny_store, {"posterior": "x"}, fit, status)
    assert status == {"cache": "miss"}
    assert cache_path("k").parent == tmp_path / "user" / "posteriors"
