"""Root conftest: every test session can use the local stack (started on first use, stopped at the end)."""

pytest_plugins = ["siyu_devstack.pytest_plugin"]
