"""Losses shared by the learned systems (torch tensors N×C×H×W)."""

from __future__ import annotations


def negative_ssim_loss(a, b):
    """1 − SSIM of two N×3×H×W tensors in [0, 1] (Gaussian window σ = 1.5, 11 taps), the
    paper's perceptual loss l_p up to a constant."""
    import torch
    import torch.nn.functional as F

    taps = torch.arange(-5, 6, dtype=a.dtype, device=a.device)
    window = torch.exp(-0.5 * (taps / 1.5) ** 2)
    window = (window / window.sum())
    kernel = (window[:, None] * window[None, :]).expand(a.shape[1], 1, 11, 11).contiguous()

    def smooth(x):
        return F.conv2d(x, kernel, groups=a.shape[1])

    c1, c2 = 0.01 ** 2, 0.03 ** 2
    mu_a, mu_b = smooth(a), smooth(b)
    var_a = smooth(a * a) - mu_a ** 2
    var_b = smooth(b * b) - mu_b ** 2
    covariance = smooth(a * b) - mu_a * mu_b
    ssim = ((2 * mu_a * mu_b + c1) * (2 * covariance + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return 1 - ssim.mean()
