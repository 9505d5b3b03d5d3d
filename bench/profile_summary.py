"""Summarize py-spy raw (collapsed) stacks: where the samples are, own and inclusive."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path


def main(path: str, top: int = 25) -> None:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for line in Path(path).read_text().splitlines():
        stack, _, count = line.rstrip().rpartition(" ")
        n = int(count)
        frames = stack.split(";")
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    total = sum(own.values()) or 1
    print(f"{total} samples\n-- own time")
    for frame, n in own.most_common(top):
        print(f"{n / total:6.1%}  {frame[:140]}")
    print("-- inclusive, our code")
    ours = [
        (f, n) for f, n in inclusive.most_common() if any(p in f for p in ("gateway/", "inbox/", "channels/"))
    ]
    for frame, n in ours[:top]:
        print(f"{n / total:6.1%}  {frame[:140]}")


if __name__ == "__main__":
    main(sys.argv[1])
