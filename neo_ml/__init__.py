"""Neo Alexandria ML workbench."""
