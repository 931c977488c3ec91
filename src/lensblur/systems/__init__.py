"""Published bokeh systems, one folder each (model, renderer entry, training, export)."""
