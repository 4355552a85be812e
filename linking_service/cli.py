"""The ``linking-service`` command (the gRPC server arrives with the linking-service issue)."""

import click


@click.group()
def main() -> None:
    """ЕЛК billing-account linking service."""
