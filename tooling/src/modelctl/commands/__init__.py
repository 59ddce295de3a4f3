"""One module per `modelctl` command."""
