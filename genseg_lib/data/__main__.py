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

from tqdm.auto import tqdm

from genseg_lib.cli import positive_int
from genseg_lib.data import LOADERS, SPLITS, DataError, load_dataset
from genseg_lib.data.synthref import SynthRefConfig, write_synthref
from genseg_lib.masks import rle_decode


def check(name: str, root: Path, splits: Sequence[str] | None) -> int:
    """Load each split, decode every mask and look for every image; returns the error count."""
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
        images = {s.image_path for s in samples}
        missing = sorted(p for p in images if not Path(p).is_file())
        n_inst = Counter()
        for s in tqdm(samples, desc=f"{name}/{split} masks", leave=False):
            for rle in s.gt_masks:
                if not rle_decode(rle).any():
                    print(f"ERROR {s.sample_id}: an instance mask is empty")
                    errors += 1
            n_inst[len(s.gt_masks)] += 1
        types = Counter(s.query_type for s in samples)
        print(
            f"{name}/{split}: {len(samples)} samples, {len(images)} images, "
            f"{sum(s.no_target for s in samples)} no-target, instances per sample "
            f"{dict(sorted(n_inst.items()))}, types {dict(types)}"
        )
        for path in missing[:5]:
            print(f"ERROR {name}/{split}: missing image {path}")
        if missing:
            print(f"ERROR {name}/{split}: {len(missing)} of {len(images)} images missing")
            errors += len(missing)
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
