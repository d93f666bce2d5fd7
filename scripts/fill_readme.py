"""Fill the README's measured blocks from the files the benchmark scripts wrote: no number is copied by hand.

    python scripts/fill_readme.py            # rewrites README.md in place
    python scripts/fill_readme.py --check    # exit 1 if README.md is not what the files say

A block is the text between `<!-- BEGIN path -->` and `<!-- END path -->`; it is replaced by the file at `path`
(relative to the repository root), for example benchmarks/RESULTS.md (benchmarks/run_all.py), benchmarks/LOAD.md
(benchmarks/load.py) and benchmarks/CONCURRENCY.md (benchmarks/concurrency.py).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"(<!-- BEGIN (?P<path>\S+) -->\n)(?P<body>.*?)(<!-- END (?P=path) -->)", re.S)


def filled(text: str, root: Path = ROOT) -> str:
    def replace(match: re.Match) -> str:
        source = root / match["path"]
        if not source.is_file():
            raise SystemExit(f"fill_readme.py: {match['path']} does not exist: run the script that writes it first")
        return match.group(1) + source.read_text().rstrip("\n") + "\n" + match.group(4)

    return BLOCK.sub(replace, text)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true")
    p.add_argument("--readme", default=str(ROOT / "README.md"))
    args = p.parse_args()
    readme = Path(args.readme)
    text = readme.read_text()
    new = filled(text)
    if args.check:
        sys.exit(0 if new == text else "fill_readme.py: README.md differs from the benchmark files: run "
                                        "python scripts/fill_readme.py")
    readme.write_text(new)


if __name__ == "__main__":
    main()
