"""One module per lab's figures, all built by ``plots.figure.new_figure`` (no pyplot global state)."""
