"""The published bokeh systems, one folder per paper: its model (torch modules, with the paper's
equation numbers), its renderer entry (registered in :mod:`lensblur.renderers`), its trainer
(registered in :data:`lensblur.training.TRAINERS`) and its shipped weights (``weights/*.pt``).

``dbsi``: Dutta, "Depth-aware blending of smoothed images" (DBSI, 2021).
``deeplens``: Wang et al., "DeepLens: shallow depth of field from a single image" (2018).
``xu_portrait``: Xu et al., "Rendering portraitures from monocular camera and beyond" (ECCV 2018),
the classical renderer (``portrait``) and the learned one (``portrait-rnn``).
``bggan``: Qian et al., "BGGAN: Bokeh-Glass Generative Adversarial Network for Rendering Realistic
Bokeh" (AIM 2020 challenge, ECCV workshops): Glass-Net and its multi-receptive-field critic.
``d2f``: Luo et al., "Defocus to Focus" (D2F; runner-up of AIM 2020 Rendering Realistic Bokeh).
"""
