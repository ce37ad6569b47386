"""Run tracking: the table of past runs (`netspec runs`) and the comparison of two specs or runs
(`netspec diff`). Both read files only and never import torch."""
