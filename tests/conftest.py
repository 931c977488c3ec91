"""Fixtures shared by the test modules."""

import pytest


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op torch thread for a module's tests: their tiny inputs gain nothing from more,
    and CI machines are shared. Restores the previous count afterwards."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def private_settings(tmp_path_factory, monkeypatch):
    """Every test gets an empty settings folder and no depth-model environment, so the real
    user's ~/.config/lensblur/config.toml and LENSBLUR_DEPTH_MODEL are never read or written
    (subprocesses inherit the patched environment)."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("xdg_config")))
    monkeypatch.delenv("LENSBLUR_DEPTH_MODEL", raising=False)
    monkeypatch.delenv("LENSBLUR_DEPTH_PRESET", raising=False)


@pytest.fixture(autouse=True)
def default_kernel_route(monkeypatch):
    """Each test starts on the default kernel route; ``lensblur.aot.prefer_jit`` (called by
    ``lensblur serve`` and ``lensblur batch``, which tests run in-process) sets
    LENSBLUR_KERNELS, and setting it here makes monkeypatch remove it again afterwards."""
    monkeypatch.setenv("LENSBLUR_KERNELS", "auto")
