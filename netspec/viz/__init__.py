"""Pictures: the network as a diagram (graph.py: DOT / Mermaid text, render.py: Graphviz's `dot`)
and training curves (plot.py, matplotlib). graph and render import no torch."""
