"""DeepLens (Wang et al. 2018): the rendering network (model), the depth predictor (depth), the
cached inference session (session), ``--renderer deeplens`` (renderer), ``lensblur train deeplens``
(training) and the shipped checkpoint (weights/). See docs/deeplens.md."""
