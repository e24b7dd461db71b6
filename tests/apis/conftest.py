"""Fixtures of the apis tests: the tiny LIA of tests/tiny_models.py."""

import pytest
from tiny_models import tiny_lia


@pytest.fixture(scope="module")
def model():
    return tiny_lia()
