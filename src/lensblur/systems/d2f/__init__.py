"""D2F, "Defocus to Focus" (Luo et al., Information Fusion 89, 2023): defocus hallucination,
radiance-weighted layered soft-disk rendering at half resolution, and fusion with the sharp
image at full resolution (docs/d2f.md).

Modules: :mod:`.model` (torch modules and the renderer), :mod:`.renderer` (``--renderer d2f``),
:mod:`.training` (``lensblur train d2f``), :mod:`.export` (``lensblur export d2f``). Section
numbers ("notes §3.4") refer to the method notes ``d2f-method-notes.md``, which restate the
authors' released code; the paper body (and so its equation numbers) was not available.
"""
