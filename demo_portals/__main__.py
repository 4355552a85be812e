"""``python -m demo_portals shop|tv`` (or ``demo-portal shop|tv``): serve one demo portal."""

from __future__ import annotations

import argparse
import os
import sys

from werkzeug.serving import run_simple

from demo_portals import create_app
from demo_portals.config import PRESETS, ConfigError, load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="demo-portal", description=__doc__)
    parser.add_argument("portal", choices=sorted(PRESETS))
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.portal, os.environ)
    except ConfigError as exc:
        print(f"demo-portal: {exc}", file=sys.stderr)
        return 2
    print(f"«{settings.title}» (demo portal) at {settings.base_url}  (IdP {settings.issuer})")
    run_simple(settings.host, settings.port, create_app(settings), threaded=True)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
