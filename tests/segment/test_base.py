"""Prompt objects, image conversion and keys."""

import numpy as np
import pytest
from PIL import Image

from genseg_lib.answer import Instance
from genseg_lib.segment.base import InstancePrompt, as_rgb_array, image_hw, image_key


def test_prompt_defaults_and_validation():
    p = InstancePrompt(box=(1, 2, 3, 4), points=((1, 1), (2, 2)))
    assert p.labels == (1, 1) and not p.degenerate
    with pytest.raises(ValueError, match="labels"):
        InstancePrompt(box=None, points=((1, 1),), labels=(1, 0))
    with pytest.raises(ValueError, match="box or at least one point"):
        InstancePrompt(box=None)
    assert InstancePrompt.from_instance(Instance((1, 2, 3, 4), ((1.5, 2.5),))).points == (
        (1.5, 2.5),
    )


def test_clipping_and_degenerate():
    p = InstancePrompt(box=(-10, 50, 30, -5), points=((-1, 3), (99, 99))).clipped(20, 10)
    assert p.box == (0, 0, 20, 10) and p.points == ((0, 3), (20, 10))
    assert InstancePrompt(box=(5, 5, 5, 9)).degenerate
    assert InstancePrompt(box=(30, 0, 40, 5)).clipped(20, 10).degenerate  # fully outside


def test_images_and_keys():
    arr = np.zeros((4, 6, 3), np.uint8)
    assert as_rgb_array(Image.fromarray(arr)).shape == (4, 6, 3)
    assert as_rgb_array(np.zeros((4, 6), np.uint8)).shape == (4, 6, 3)
    assert as_rgb_array(np.zeros((4, 6, 4), np.uint8)).shape == (4, 6, 3)
    with pytest.raises(ValueError, match="uint8"):
        as_rgb_array(np.zeros((4, 6, 3), np.float32))
    assert image_hw(Image.fromarray(arr)) == (4, 6) == image_hw(arr)
    other = arr.copy()
    other[0, 0, 0] = 1
    assert image_key(arr) == image_key(arr.copy()) != image_key(other)
    assert image_key(arr, "id-1") == "id-1"
    assert image_key(arr) != image_key(arr.reshape(6, 4, 3))
