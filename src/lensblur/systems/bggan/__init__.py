"""BGGAN (Qian et al., ECCV 2020 workshops): Glass-Net, its multi-receptive-field WGAN-GP critic
and the phone-friendly instance norm (model), the losses (losses), ``lensblur train bggan``
(training), ``--renderer bggan`` (renderer), ``lensblur export bggan`` (export) and the shipped
checkpoint (weights/). See docs/bggan.md."""
