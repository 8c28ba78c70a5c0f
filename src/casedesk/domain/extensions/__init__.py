"""Extension points keyed by (scene, edition), each with a required default."""
