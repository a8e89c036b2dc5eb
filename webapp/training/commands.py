"""`medal simulate`: the active-learning loop offline with an oracle doctor."""
import click


@click.command()
def simulate() -> None:
    """Run active-learning rounds offline against labels from an npz (oracle doctor)."""
    raise click.ClickException("not built yet")
