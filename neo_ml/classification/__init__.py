"""The taxonomy classifier: multi-label text classification into taxonomy codes."""
