"""`netspec tune`: search a spec's values with Optuna, every candidate shape-checked before it trains.

space.py (the `search:` section against its spec) and specfile.py (the best spec as a file) are
pure and run in `netspec check`; trial.py trains one candidate (torch); study.py drives Optuna;
report.py writes the table, trials.json/csv and the plots.
"""
