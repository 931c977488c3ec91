"""Training of the learned renderers (``lensblur train SYSTEM``); needs torch.

``TRAINERS`` maps a system name to the module that trains it. Each such module defines
``HELP`` (one line), ``add_arguments(parser)`` for its own options and
``train(args, progress) -> dict``, where ``args`` also carries the common options of
``lensblur train`` (data, out, resume, seed, threads, layout, split, limit) and ``progress`` is a
tqdm-like bar factory ``progress(total, description)``. The returned dict is a summary printed
as ``key: value`` lines.

Shared pieces: :mod:`lensblur.training.data` (datasets as arrays, crops and flips),
:mod:`lensblur.training.checkpoint` (atomic save, resume, loading with ``weights_only=True``).
"""

TRAINERS = {
    "portrait-rnn": "lensblur.training.portrait_rnn",
    "dbsi": "lensblur.training.dbsi",
    "deeplens": "lensblur.training.deeplens",
    "d2f": "lensblur.systems.d2f.training",
}
