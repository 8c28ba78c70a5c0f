"""manager layer: domain capabilities that activities reuse."""
