"""Local-only tooling: Azurite and the demo. Never deployed (see .funcignore)."""
