"""Fixtures shared by the integration and end-to-end tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from support import free_port


@pytest.fixture
def unused_port() -> Callable[[], int]:
    return free_port
