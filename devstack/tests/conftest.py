"""Tests of the local stack itself; they share the session ``stack`` fixture with every other suite.

The plugin is registered from ``pytest_configure`` rather than with ``pytest_plugins``: the latter is only allowed in
a top-level conftest, and this directory is not top-level when the whole repository is tested in one session.
"""

from __future__ import annotations

import pytest

PLUGIN = "siyu_devstack.pytest_plugin"


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin(PLUGIN):
        config.pluginmanager.import_plugin(PLUGIN)
