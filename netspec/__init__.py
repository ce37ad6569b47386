"""netspec: a declarative deep-learning compiler. YAML spec -> checked IR -> PyTorch."""

__version__ = "0.1.0"
