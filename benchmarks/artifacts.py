"""What one run costs on disk: its artifacts by folder, and its step images as palette PNGs
(what the harness logs) against the RGB PNGs it logged before.

    .venv/bin/python benchmarks/artifacts.py                # the default experiment, seed 0
    .venv/bin/python benchmarks/artifacts.py strategy=random budget=200

Runs `al_research.experiment.runner.run` on the composed default config (plus any overrides) into a
temporary SQLite store, then sums the sizes of the run's artifacts per top-level folder. For
`images/`, each logged palette PNG is also re-encoded as the RGB PNG it used to be (MLflow's
WebP thumbnail beside it is the same either way), giving the before/after figure in MB per run.
"""

from __future__ import annotations

import io
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import al_research  # noqa: E402, F401, I001  (quiet TF, BLAS threads, before numpy)


def main(overrides: list[str]) -> None:
    from hydra import compose, initialize_config_dir
    from PIL import Image

    from al_research.experiment.runner import run

    with tempfile.TemporaryDirectory(prefix="al-research-artifacts-") as work:
        uri = f"sqlite:///{Path(work) / 'mlflow.db'}"
        conf_dir = str(ROOT / "al_research" / "conf")
        with initialize_config_dir(config_dir=conf_dir, version_base="1.3"):
            cfg = compose("config", [f"tracking.uri={uri}", *overrides])
        run(cfg)
        sizes: dict[str, int] = defaultdict(int)
        rgb_pngs = palette_pngs = 0
        for path in (Path(work) / "mlartifacts").rglob("*"):
            if not path.is_file():
                continue
            top = path.relative_to(next(p for p in path.parents if p.name == "artifacts"))
            sizes[top.parts[0] if len(top.parts) > 1 else "(top level)"] += path.stat().st_size
            if top.parts[0] == "images" and path.suffix == ".png":
                palette_pngs += path.stat().st_size
                buffer = io.BytesIO()
                with Image.open(path) as image:
                    image.convert("RGB").save(buffer, "PNG")
                rgb_pngs += len(buffer.getvalue())
    total = sum(sizes.values())
    print(f"one run ({' '.join(overrides) or 'default config'}): {total / 1e6:.2f} MB")
    for name, size in sorted(sizes.items(), key=lambda kv: -kv[1]):
        print(f"  {name:<16} {size / 1e6:6.3f} MB")
    before = total - palette_pngs + rgb_pngs
    print(f"step images as RGB PNGs (before): {before / 1e6:.2f} MB per run; as palette PNGs "
          f"(now): {total / 1e6:.2f} MB per run ({total / before:.2f}x)")


if __name__ == "__main__":
    main(sys.argv[1:])
