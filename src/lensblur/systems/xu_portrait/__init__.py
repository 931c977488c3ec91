"""Xu et al. 2018, "Rendering portraitures from monocular camera and beyond": the classical
renderer ``portrait`` (renderer, depth_layers, knn_matting; docs/portrait.md) and the learned
``portrait-rnn`` (rnn_model, spn, recursive_filter, rnn_renderer, training, weights/;
docs/portrait-rnn.md)."""
