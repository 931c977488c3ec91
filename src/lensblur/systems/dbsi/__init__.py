"""DBSI (Dutta 2021): the network (model), the ``dbsi`` and ``saliency-baseline`` renderers
(renderer), ``lensblur train dbsi`` (training) and the shipped checkpoints (weights/). See docs/dbsi.md."""
