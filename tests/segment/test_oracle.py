"""Oracle prompts from GT masks, by prompt mode."""

import numpy as np
import pytest

from genseg_lib.segment.oracle import PROMPT_MODES, oracle_instances, oracle_prompts


def masks():
    a = np.zeros((10, 10), bool)
    a[2:8, 3:6] = True
    b = np.zeros((10, 10), bool)
    b[0, 0] = True
    return [a, b]


def test_oracle_instances_are_gt_prompts():
    a, b = oracle_instances(masks())
    assert a.box == (3.0, 2.0, 6.0, 8.0) and a.points == ((4.5, 3.5), (4.5, 6.5))
    assert b.box == (0.0, 0.0, 1.0, 1.0) and len(b.points) == 2


@pytest.mark.parametrize(
    "mode,has_box,n_points",
    [("box", True, 0), ("box+1pt", True, 1), ("box+2pt", True, 2), ("2pt", False, 2)],
)
def test_modes(mode, has_box, n_points):
    prompts = oracle_prompts(masks(), mode)
    assert len(prompts) == 2
    for p in prompts:
        assert (
            (p.box is not None) == has_box
            and len(p.points) == n_points
            and p.labels == (1,) * n_points
        )
    assert mode in PROMPT_MODES


def test_unknown_mode_and_empty_mask():
    with pytest.raises(ValueError, match="prompt mode"):
        oracle_prompts(masks(), "mask")
    with pytest.raises(ValueError, match="empty"):
        oracle_prompts([np.zeros((3, 3), bool)])
