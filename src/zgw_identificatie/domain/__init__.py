"""The pure core: stdlib only (a test reads the imports and fails on anything else)."""
