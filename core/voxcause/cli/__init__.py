"""Command-line interface: one module per command (``add_parser`` + ``run``)."""
