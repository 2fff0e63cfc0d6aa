"""Dataset statistics on hand-made samples."""

import numpy as np
import pytest

from genseg_lib.data import Sample
from genseg_lib.data.stats import dataset_summary, instance_areas, query_type_counts
from genseg_lib.masks import rle_encode


def sample(i, masks, kind):
    return Sample(
        f"s{i}",
        "q",
        [rle_encode(m) for m in masks],
        not masks,
        10,
        10,
        source={"scene_id": f"img{i // 2}"},
        image=np.zeros((10, 10, 3), np.uint8),
        query_type=kind,
    )


def test_summary_hand_computed():
    a = np.zeros((10, 10), bool)
    a[:5, :5] = True  # 25 %
    b = np.zeros((10, 10), bool)
    b[0, :10] = True  # 10 %
    samples = [
        sample(0, [a], "attribute"),
        sample(1, [a, b], "multi"),
        sample(2, [], "no_target"),
        sample(3, [b], "attribute"),
    ]
    np.testing.assert_allclose(instance_areas(samples), [0.25, 0.25, 0.10, 0.10])
    row = dataset_summary("x", samples)
    assert row["samples"] == 4 and row["images"] == 2
    assert row["no-target %"] == 25 and row["multi-target %"] == 25
    assert row["instances / sample"] == 1.0 and row["median mask area %"] == pytest.approx(17.5)
    assert query_type_counts(samples) == {"attribute": 2, "multi": 1, "no_target": 1}
