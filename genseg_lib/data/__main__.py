"""Dataset command line.

python -m genseg_lib.data check NAME ROOT [--split S ...]   validate a folder, print counts
python -m genseg_lib.data synthref --out ROOT --n N --seed S  write SynthRef under ROOT
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from PIL import Image
from tqdm.auto import tqdm

from genseg_lib.cli import positive_int
from genseg_lib.data import LOADERS, SPLITS, DataError, load_dataset
from genseg_lib.data.sample import IMAGE_ERRORS
from genseg_lib.data.synthref import SynthRefConfig, write_synthref
from genseg_lib.masks import rle_decode


def _image_problem(path: Path, width: int, height: int) -> str | None:
    """Why the image at ``path`` cannot serve a sample of ``width`` x ``height``, or None."""
    if not path.is_file():
        return "missing"
    try:
        with Image.open(path) as img:
            img.load()  # decode every pixel: a truncated file fails here, not mid-run
            size = img.size
    except IMAGE_ERRORS as exc:
        return f"cannot be decoded ({exc})"
    if size != (width, height):
        return f"is {size[0]}x{size[1]}, the annotations say {width}x{height}"
    return None


def check(name: str, root: Path, splits: Sequence[str] | None) -> int:
    """Load each split, decode every mask and every image (and compare its size with the
    annotations'); print each problem with its record, return how many there were."""
    errors = 0
    found = 0
    for split in splits or SPLITS[name]:
        try:
            samples = load_dataset(name, root, split)
        except DataError as exc:
            if splits or "unknown split" not in str(exc):
                print(f"ERROR {exc}")
                errors += 1
            continue
        found += 1
        n_inst = Counter()
        for s in tqdm(samples, desc=f"{name}/{split} masks", leave=False):
            for i, rle in enumerate(s.gt_masks):
                try:
                    empty = not rle_decode(rle).any()
                except ValueError as exc:
                    print(f"ERROR {s.sample_id}: instance {i}: {exc}")
                    errors += 1
                    continue
                if empty:
                    print(f"ERROR {s.sample_id}: instance {i} has an empty mask")
                    errors += 1
            n_inst[len(s.gt_masks)] += 1
        images = {s.image_path: (s.width, s.height) for s in samples if s.image_path}
        bad = Counter()
        for path, (w, h) in tqdm(images.items(), desc=f"{name}/{split} images", leave=False):
            problem = _image_problem(Path(path), w, h)
            if problem:
                if sum(bad.values()) < 20:
                    print(f"ERROR {name}/{split}: image {path} {problem}")
                bad[problem.split(" ")[0]] += 1
        errors += sum(bad.values())
        types = Counter(s.query_type for s in samples)
        print(
            f"{name}/{split}: {len(samples)} samples, {len(images) or len(samples)} images, "
            f"{sum(s.no_target for s in samples)} no-target, instances per sample "
            f"{dict(sorted(n_inst.items()))}, types {dict(types)}"
        )
        if bad:
            print(f"ERROR {name}/{split}: {sum(bad.values())} of {len(images)} images: {dict(bad)}")
    if not found and not errors:
        print(f"ERROR {name}: no split of {SPLITS[name]} found under {root}")
        errors += 1
    return errors


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m genseg_lib.data", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_check = sub.add_parser("check", help="validate a dataset folder and print counts")
    p_check.add_argument("name", choices=sorted(LOADERS))
    p_check.add_argument("root", type=Path)
    p_check.add_argument("--split", nargs="*", help="splits to check (default: all present)")
    p_syn = sub.add_parser("synthref", help="generate SynthRef under OUT/synthref")
    p_syn.add_argument("--out", type=Path, required=True, help="data root to write into")
    p_syn.add_argument("--n", type=positive_int, default=1000, help="samples over all splits")
    p_syn.add_argument("--seed", type=int, default=0)
    p_syn.add_argument("--image-size", type=positive_int, default=SynthRefConfig.image_size)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.command == "check":
        errors = check(args.name, args.root, args.split)
        print("OK" if not errors else f"{errors} problem(s)")
        return 1 if errors else 0
    start = time.perf_counter()
    out = write_synthref(args.out, args.n, args.seed, SynthRefConfig(image_size=args.image_size))
    print(f"wrote {out} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
