"""The 0..255 rule's consequences, written once in ``reference.common``: the full-scale
value of an image and salt & pepper's automatic fill values."""

from __future__ import annotations

import numpy as np
import pytest
from datarax_ops.reference import NoiseOperatorConfig, apply
from datarax_ops.reference.common import PARAM_FLOAT, from_working, salt_pepper_values, value_scale

IMAGES = {
    "0..1": np.array([[0.0, 0.5], [1.0, 1.5]]),  # 1.5 is not above the threshold
    "0..255": np.array([[0.0, 1.6], [200.0, np.nan]]),
    "uint8": np.array([[0, 2]], np.uint8),
    "empty": np.zeros((0, 3)),
    "all NaN": np.full((2, 2), np.nan),
}
EXPECTED_SCALE = {"0..1": 1.0, "0..255": 255.0, "uint8": 255.0, "empty": 1.0, "all NaN": 1.0}


@pytest.mark.parametrize("name", IMAGES)
def test_value_scale_follows_the_255_rule(name):
    assert value_scale(IMAGES[name]) == EXPECTED_SCALE[name]


@pytest.mark.parametrize("name", IMAGES)
@pytest.mark.parametrize(("salt_value", "pepper_value"), [(None, None), (0.7, 0.2), (None, 0.1)])
def test_salt_pepper_values_defaults(name, salt_value, pepper_value):
    image = IMAGES[name]
    salt, pepper = salt_pepper_values(salt_value, pepper_value, image)
    assert salt == (EXPECTED_SCALE[name] if salt_value is None else salt_value)
    assert pepper == (0.0 if pepper_value is None else pepper_value)
    config = NoiseOperatorConfig(
        field_key="image",
        mode="salt_pepper",
        salt_prob=0.1,
        pepper_prob=0.1,
        salt_value=salt_value,
        pepper_value=pepper_value,
        clip_range=None,
    )
    # what the spec writes: every value salt (levels 0), every value pepper (levels 0.15)
    for level, fill in ((0.0, salt), (0.15, pepper)):
        params = {"noise_mask": np.full(image.shape, level, PARAM_FLOAT)}
        expected = from_working(np.full(image.shape, fill), image.dtype)
        np.testing.assert_array_equal(apply(config, image, params), expected)
