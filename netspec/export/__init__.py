"""`netspec export`: inference-time graph passes (passes.py, no torch) and their weights side
(weights.py), then one writer and reload check per format (formats.py). See docs/export.md."""
