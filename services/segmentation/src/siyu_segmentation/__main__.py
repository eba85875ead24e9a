"""`siyu-segmentation serve|migrate|keys` (also `python -m siyu_segmentation`)."""

from __future__ import annotations

from siyu_segmentation.bootstrap import build_spec
from siyu_shared.cli import service_main


def main() -> None:
    raise SystemExit(service_main(build_spec))


if __name__ == "__main__":
    main()
