"""BGGAN's losses (section 2.2, section 3.2): the pre-training loss L1 − SSIM, the hybrid
fine-tuning loss of Eq. 3 (Eq. 7 without the critic), the perceptual loss of Eq. 1, the
generator's adversarial loss of Eq. 2 and the WGAN-GP critic loss.

Images are N×3×H×W tensors in [-1, 1] (Glass-Net's range); SSIM is taken on [0, 1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lensblur.training.losses import negative_ssim_loss

PRETRAIN_WEIGHTS = {"l1": 1.0, "ssim": 1.0}
"""First training stage: L1 + negative SSIM (section 3.2)."""

FINETUNE_WEIGHTS = {"l1": 0.5, "ssim": 0.05, "vgg": 0.1, "adv": 1.0}
"""Eq. 3: L_hybrid = 0.5·L1 + 0.05·L_SSIM + 0.1·L_VGG + L_adv (Eq. 7 drops L_adv)."""

ADAM_BETAS = (0.0, 0.9)
"""Adam's β1, β2 for generator and critic (section 3.2)."""

LEARNING_RATE = 1e-4
"""Learning rate of generator and critic in both training stages (section 3.2)."""

GRADIENT_PENALTY = 10.0
"""λ of WGAN-GP (Gulrajani et al.'s value; the paper does not state one)."""


def ssim_term(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L_SSIM = 1 − SSIM (the negative SSIM up to a constant) of two images in [-1, 1]."""
    return negative_ssim_loss((output + 1) / 2, (target + 1) / 2)


def perceptual_loss(features, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Eq. 1: mean absolute difference of the relu5_4 feature maps of output and target."""
    return (features(output) - features(target)).abs().mean()


def adversarial_loss(critic, output: torch.Tensor) -> torch.Tensor:
    """Eq. 2: L_adv = −mean critic score of the generated images."""
    return -critic(output).mean()


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor, generator=None) -> torch.Tensor:
    """WGAN-GP's penalty E[(‖∇D(x̂)‖₂ − 1)²] at random points x̂ between real and fake images.
    generator: an optional CPU torch.Generator for the mixing weights (reproducible training)."""
    mix = torch.rand(real.shape[0], 1, 1, 1, generator=generator).to(real.device)
    points = (mix * real + (1 - mix) * fake).requires_grad_(True)
    gradients, = torch.autograd.grad(critic(points).sum(), points, create_graph=True)
    return ((gradients.flatten(1).norm(dim=1) - 1) ** 2).mean()


def critic_loss(critic, real: torch.Tensor, fake: torch.Tensor, generator=None) -> torch.Tensor:
    """WGAN-GP critic loss: mean D(fake) − mean D(real) + λ·penalty (fake is detached)."""
    fake = fake.detach()
    return critic(fake).mean() - critic(real).mean() + GRADIENT_PENALTY * gradient_penalty(critic, real, fake, generator)


def pretrain_loss(rough: torch.Tensor, output: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """First-stage loss L1 + L_SSIM on the output, plus L1 on the rough result I − R, which
    supervises stage one's residual R against I − O (section 2.1). Returns (loss, parts)."""
    parts = {"l1": F.l1_loss(output, target), "ssim": ssim_term(output, target), "rough": F.l1_loss(rough, target)}
    loss = PRETRAIN_WEIGHTS["l1"] * parts["l1"] + PRETRAIN_WEIGHTS["ssim"] * parts["ssim"] + parts["rough"]
    return loss, parts


def hybrid_loss(output: torch.Tensor, target: torch.Tensor, features=None, critic=None) -> tuple[torch.Tensor, dict]:
    """Eq. 3 (with ``critic``) or Eq. 7 (``critic=None``); ``features=None`` drops L_VGG (no
    VGG19 weights). Returns (loss, parts)."""
    parts = {"l1": F.l1_loss(output, target), "ssim": ssim_term(output, target)}
    if features is not None:
        parts["vgg"] = perceptual_loss(features, output, target)
    if critic is not None:
        parts["adv"] = adversarial_loss(critic, output)
    loss = sum(FINETUNE_WEIGHTS[name] * value for name, value in parts.items())
    return loss, parts
