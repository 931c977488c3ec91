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

ROOT = pathlib.Path(__file__).resolve().parent.parent
SYSTEMS = "src/lensblur/systems/"

# (label, file under SYSTEMS, text, replacement)
MUTATIONS = [
    ("DBSI kernels 25,45,75 -> 5,25,45", "dbsi/model.py",
     "PAPER_KERNELS = (25, 45, 75)", "PAPER_KERNELS = (5, 25, 45)"),
    ("DBSI Adam betas -> (0.5, 0.9)", "dbsi/training.py", "betas=(0.9, 0.999)", "betas=(0.5, 0.9)"),
    ("DBSI phase-3 loss ssim -> l1", "dbsi/training.py",
     '3: ((192, 256), 60, 2, 4e-5, 1e-5, "ssim")', '3: ((192, 256), 60, 2, 4e-5, 1e-5, "l1")'),
    ("DBSI phase-3 loss function mapping", "dbsi/training.py",
     'loss_fn = torch.nn.functional.l1_loss if settings["loss"] == "l1" else negative_ssim_loss',
     "loss_fn = torch.nn.functional.l1_loss"),
    ("DeepLens alpha 1.5 -> 1.0", "deeplens/model.py", "alpha: float = 1.5", "alpha: float = 1.0"),
    ("DeepLens features 32 -> 16", "deeplens/model.py", '"features": 32,', '"features": 16,'),
    ("DeepLens bins 1,2,4,8 -> 1,2,3,6", "deeplens/depth.py", "bins=(1, 2, 4, 8)", "bins=(1, 2, 3, 6)"),
    ("DeepLens --corrupt 3 -> 0", "deeplens/training.py",
     '"--corrupt", type=int, default=3', '"--corrupt", type=int, default=0'),
    ("DeepLens beta 1 -> 0", "deeplens/training.py",
     '"--beta", type=float, default=1.0', '"--beta", type=float, default=0.0'),
    ("Xu K 6 -> 3", "xu_portrait/depth_layers.py", "LAYERS = 6 ", "LAYERS = 3 "),
    ("Xu lambda 10 -> 0", "xu_portrait/depth_layers.py", "SMOOTHNESS = 10.0", "SMOOTHNESS = 0.0"),
    ("Xu trimap band 10 -> 3", "xu_portrait/renderer.py", "MATTING_BAND = 10 ", "MATTING_BAND = 3 "),
    ("Xu Eq. 9 Sobel removed on vertical neighbours", "xu_portrait/depth_layers.py",
     "down[:-1, :] = np.exp(-np.minimum(gy[:-1, :], gy[1:, :]) * unit)", "down[:-1, :] = 1.0"),
    ("Xu Eq. 8 back to the Gaussian NLL", "xu_portrait/depth_layers.py",
     "cost = np.abs(z - c) / (s * s)", "cost = (z - c) ** 2 / (2 * s * s) + np.log(s)"),
    ("Xu feathering x10", "xu_portrait/renderer.py", "FEATHER_FRACTION = 0.002", "FEATHER_FRACTION = 0.02"),
    ("Xu Eq. 3 weight 10 -> 0", "xu_portrait/training.py", "0.1 * rank + 10.0 * body", "0.1 * rank + 0.0 * body"),
    ("BGGAN GP 10 -> 1", "bggan/losses.py", "GRADIENT_PENALTY = 10.0", "GRADIENT_PENALTY = 1.0"),
    ("D2F tau 1/8 -> 1/4", "d2f/model.py", "THRESHOLD_TAU = 1.0 / 8.0", "THRESHOLD_TAU = 1.0 / 4.0"),
]


def run_tests(skip_dbsi_training: bool) -> str:
    """Run the pin tests; the name of the first failing test, or "" when all pass."""
    command = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "tests/test_paper_constants.py"]
    if skip_dbsi_training:
        command += ["-k", "not adam_betas"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env)
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAILED")]
    return failed[0].split("::")[1].split(" ")[0] if failed else ""


def main() -> int:
    start = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    rows = []
    for label, relative, old, new in MUTATIONS[start:]:
        path = ROOT / SYSTEMS / relative
        text = path.read_text()
        if text.count(old) != 1:
            raise SystemExit(f"{label}: the text to mutate is not (uniquely) in {path}")
        path.write_text(text.replace(old, new))
        try:
            caught = run_tests(skip_dbsi_training=not label.startswith("DBSI"))
        finally:
            path.write_text(text)
        verdict = f"caught by `{caught}`" if caught else "**not caught**"
        rows.append(f"| {label} | `{SYSTEMS}{relative}` | {verdict} |")
        print(rows[-1], flush=True)
    if start == 0:
        (ROOT / "benchmarks" / "results" / "paper_mutations.md").write_text(
            "# Mutations of the papers' hyper-parameters\n\n`python benchmarks/paper_mutations.py`: each row changes "
            "one value in the source, runs tests/test_paper_constants.py and restores the source.\n\n"
            "| mutation | file | result |\n|---|---|---|\n" + "\n".join(rows) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
