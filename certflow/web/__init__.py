"""The HTTP side: a JSON API over the engine facade (browser pages come later)."""
