#!/usr/bin/env python3
"""Sorts ThreadSanitizer reports (files written with TSAN_OPTIONS=log_path=...) into those at a
hand-off inside a library built without TSan, which TSan cannot see synchronise, and those it must
be shown: both accesses in instrumented code. Debian's Qt and LibTorch are not instrumented, so
a queued signal's argument (copied by QMetaType::create in the worker, read by the GUI thread after
Qt's event queue, whose mutex TSan does not see) and LibTorch's Gloo and OpenMP internals are
reported although they are synchronised. Exit status 1 when any report is left to review.

    tools/tsan_triage.py LOG...
"""
import re
import sys

UNINSTRUMENTED = ("libQt6", "libtorch", "libgomp", "libc10", "libopenblas", "libgloo")
ALLOC = ("operator new", "operator delete", "malloc", "calloc", "free", "posix_memalign", "realloc",
         "memcpy", "memmove", "memset", "pthread_cond_")
QUEUED = ("QMetaType::create", "QMetaType::construct", "QMetaCallEvent", "QMetaType::destroy")


def accesses(report):
    return re.findall(r"^  ((?:Previous )?(?:atomic )?(?:read|write) of size[^\n]*\n(?:    [^\n]*\n)*)", report, re.M | re.I)


def frames(block):
    return re.findall(r"^\s+#\d+ (.*)$", block, re.M)


def kind_of(report):
    acc = accesses(report)
    location = report.split("Location is", 1)[1].split("Thread T", 1)[0] if "Location is" in report else ""
    if (any(q in location for q in QUEUED) or any(q in a for a in acc for q in QUEUED)
            or any("libQt6Core" in f for f in frames(location)[:2])):
        return "queued signal argument (Qt's event queue)"
    for a in acc:
        fr = frames(a)
        head = fr[:3]
        if any(lib in f for f in head for lib in UNINSTRUMENTED):
            return "inside an uninstrumented library"
        if fr and fr[0].startswith(ALLOC) and len(fr) > 1 and "<null>" in fr[1]:
            return "allocation or copy by an uninstrumented library"
        if fr and fr[0].startswith(("pthread_cond_destroy", "pthread_cond_broadcast")):
            return "inside an uninstrumented library"
    return "review"


def main(paths):
    counts, review = {}, []
    for path in paths:
        text = open(path, errors="replace").read()
        for report in text.split("==================")[1:]:
            if "WARNING: ThreadSanitizer" not in report:
                continue
            k = kind_of(report)
            counts[k] = counts.get(k, 0) + 1
            if k == "review":
                review.append((path, report))
    for k, n in sorted(counts.items(), key=lambda x: -x[1]):
        print(f"{n:5d}  {k}")
    for path, report in review:
        print(f"\n--- {path}{report}")
    return 1 if review else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
