"""`siyu-journey serve|migrate|keys` (also `python -m siyu_journey`)."""

from __future__ import annotations

from siyu_journey.bootstrap import build_spec
from siyu_shared.cli import service_main


def main() -> None:
    raise SystemExit(service_main(build_spec))


if __name__ == "__main__":
    main()
