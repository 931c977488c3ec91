"""Mutation check of tests/test_paper_constants.py: change one published hyper-parameter at a time
in the source, run the test file, restore the source, and record which test caught the change.

    python benchmarks/paper_mutations.py            # all mutations -> benchmarks/results/paper_mutations.md
    python benchmarks/paper_mutations.py 7          # from the 8th mutation on (printed only)

Edits the working tree's files in place (restored in a finally block): run it on a clean tree and
do not edit src/ meanwhile. The DBSI training test is left out after the DBSI mutations, which it
alone guards, to save time (about 1 minute per mutation on a busy 2-core machine).
"""

import os
import pathlib
import subprocess
import sys

root = pathlib.Path(__file__).resolve().parent.parent
M = [
 ("DBSI kernels 25,45,75 -> 5,25,45", "src/lensblur/systems/dbsi/model.py", "PAPER_KERNELS = (25, 45, 75)", "PAPER_KERNELS = (5, 25, 45)"),
 ("DBSI Adam betas -> (0.5, 0.9)", "src/lensblur/systems/dbsi/training.py", "betas=(0.9, 0.999)", "betas=(0.5, 0.9)"),
 ("DBSI phase-3 loss ssim -> l1", "src/lensblur/systems/dbsi/training.py", '3: ((192, 256), 60, 2, 4e-5, 1e-5, "ssim")', '3: ((192, 256), 60, 2, 4e-5, 1e-5, "l1")'),
 ("DBSI phase-3 loss function mapping", "src/lensblur/systems/dbsi/training.py", 'loss_fn = torch.nn.functional.l1_loss if settings["loss"] == "l1" else negative_ssim_loss', 'loss_fn = torch.nn.functional.l1_loss'),
 ("DeepLens alpha 1.5 -> 1.0", "src/lensblur/systems/deeplens/model.py", "alpha: float = 1.5", "alpha: float = 1.0"),
 ("DeepLens features 32 -> 16", "src/lensblur/systems/deeplens/model.py", '"features": 32,', '"features": 16,'),
 ("DeepLens bins 1,2,4,8 -> 1,2,3,6", "src/lensblur/systems/deeplens/depth.py", "bins=(1, 2, 4, 8)", "bins=(1, 2, 3, 6)"),
 ("DeepLens --corrupt 3 -> 0", "src/lensblur/systems/deeplens/training.py", '"--corrupt", type=int, default=3', '"--corrupt", type=int, default=0'),
 ("DeepLens beta 1 -> 0", "src/lensblur/systems/deeplens/training.py", '"--beta", type=float, default=1.0', '"--beta", type=float, default=0.0'),
 ("Xu K 6 -> 3", "src/lensblur/systems/xu_portrait/depth_layers.py", "LAYERS = 6 ", "LAYERS = 3 "),
 ("Xu lambda 10 -> 0", "src/lensblur/systems/xu_portrait/depth_layers.py", "SMOOTHNESS = 10.0", "SMOOTHNESS = 0.0"),
 ("Xu trimap band 10 -> 3", "src/lensblur/systems/xu_portrait/renderer.py", "MATTING_BAND = 10 ", "MATTING_BAND = 3 "),
 ("Xu Eq. 9 Sobel removed on vertical neighbours", "src/lensblur/systems/xu_portrait/depth_layers.py", "down[:-1, :] = np.exp(-np.minimum(gy[:-1, :], gy[1:, :]) * unit)", "down[:-1, :] = 1.0"),
 ("Xu Eq. 8 back to the Gaussian NLL", "src/lensblur/systems/xu_portrait/depth_layers.py", "cost = np.abs(z - c) / (s * s)", "cost = (z - c) ** 2 / (2 * s * s) + np.log(s)"),
 ("Xu feathering x10", "src/lensblur/systems/xu_portrait/renderer.py", "FEATHER_FRACTION = 0.002", "FEATHER_FRACTION = 0.02"),
 ("Xu Eq. 3 weight 10 -> 0", "src/lensblur/systems/xu_portrait/training.py", "0.1 * rank + 10.0 * body", "0.1 * rank + 0.0 * body"),
 ("BGGAN GP 10 -> 1", "src/lensblur/systems/bggan/losses.py", "GRADIENT_PENALTY = 10.0", "GRADIENT_PENALTY = 1.0"),
 ("D2F tau 1/8 -> 1/4", "src/lensblur/systems/d2f/model.py", "THRESHOLD_TAU = 1.0 / 8.0", "THRESHOLD_TAU = 1.0 / 4.0"),
]
only = sys.argv[1:]
start = int(only[0]) if only else 0
rows = []
for label, rel, old, new in M[start:]:
    path = root / rel
    text = path.read_text()
    assert text.count(old) == 1, (label, text.count(old))
    path.write_text(text.replace(old, new))
    try:
        r = subprocess.run(["/work/main/.venv/bin/pytest", "-q", "-x", "-p", "no:cacheprovider", "tests/test_paper_constants.py"] + (["-k", "not adam_betas"] if not label.startswith("DBSI") else []),
                           cwd=root, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(root / "src"), "OMP_NUM_THREADS": "1"})
        failed = [l for l in r.stdout.splitlines() if l.startswith("FAILED")]
        verdict = ("caught by `" + failed[0].split("::")[1].split(" ")[0] + "`") if failed else "**not caught**"
        rows.append(f"| {label} | `{rel}` | {verdict} |")
        print(rows[-1], flush=True)
    finally:
        path.write_text(text)

if start == 0:
    (root / "benchmarks" / "results" / "paper_mutations.md").write_text(
        "# Mutations of the papers' hyper-parameters\n\n`python benchmarks/paper_mutations.py`: each row changes one "
        "value in the source, runs tests/test_paper_constants.py and restores the source.\n\n"
        "| mutation | file | result |\n|---|---|---|\n" + "\n".join(rows) + "\n")
