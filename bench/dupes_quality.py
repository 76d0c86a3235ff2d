"""How well the model-free "same photo" tier tells re-saved copies from other captures.

Builds a labelled set from ../shared/data/photos: originals spread over its folders, each with
its own transforms (re-encodes, resizes, WebP, HEIC, EXIF orientations, turns and mirrors, grey,
tone changes, blur, noise, crops), plus negatives: the remaining real photos as distractors,
burst stand-ins (the frame shifted a few percent with something in the scene moved) and the real
HDR on/off pairs. Files are read as the indexer reads them (PIL, EXIF upright, RGB), then grouped
by clipfind.samephoto.same_groups.

Prints pair recall per transform and pair precision for the same tier and, in the same run, for
the peers' model-free baseline: imagehash pHash at Hamming distance <= 8 (chained, as peers do).
Also prints the thumbnail's cost and, with --scale, the grouping time for a synthetic library.

Crops are reported apart, by clipfind.cropcheck (the model-free check that confirms candidates
CLIP proposes): recall of crop50 and crop80 against their original (and crop50 inside crop80),
and false positives with every pair of distinct photos (originals, distractors, HDR files) as a
candidate, harsher than CLIP's neighbours would be, each burst frame against its original and the
other frames of its burst, and the HDR on/off pairs. Burst frames against the crops of their
original are listed apart: a stand-in frame is an exact crop of the original outside its moved
patch, so where a crop leaves the patch out, no pixel test can tell them apart.

    .venv/bin/python bench/dupes_quality.py                 # 30 originals; set cached in /tmp/dq
    .venv/bin/python bench/dupes_quality.py --originals 114 # every photo an original
    .venv/bin/python bench/dupes_quality.py --scale 100000  # also: same_groups on 100k thumbnails
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import sys
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from clipfind.fingerprint import SIDE, Capture, oriented, thumbnail  # noqa: E402
from clipfind.samephoto import SameGroup, same_groups  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
PHOTOS = DATA / "photos"
HDR = DATA / "formats" / "exif-samples" / "jpg" / "hdr"
CACHE = Path("/tmp/dq")
CROPS = ("crop50", "crop80")  # reported apart: the model-free tier alone is not asked to find crops
SAME_PIXELS = {"chessboard_GRAY": "chessboard", "chessboard_RGB": "chessboard"}  # one picture, two files
Row = tuple[str, str, str]  # (path, label: one capture, kind: original | transform name | burst | hdr | distractor)


def _encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def transforms(image: Image.Image, rng: np.random.Generator) -> Iterator[tuple[str, bytes]]:
    """(name, file bytes) of each re-saved copy of one original: what the same tier must find."""
    w, h = image.size
    for q in (20, 50, 95):
        yield f"jpeg_q{q}", _encoded(image, "JPEG", quality=q)
    for pct in (25, 50, 200):
        resized = image.resize((max(1, w * pct // 100), max(1, h * pct // 100)), Image.Resampling.LANCZOS)
        yield f"resize{pct}", _encoded(resized, "JPEG", quality=90)
    yield "webp", _encoded(image, "WEBP", quality=80)
    yield "heic", _encoded(image, "HEIF", quality=80)
    for orientation in range(2, 9):  # pixels stored as they are, the tag says how to show them
        exif = Image.Exif()
        exif[0x0112] = orientation
        yield f"exif{orientation}", _encoded(image, "JPEG", quality=90, exif=exif.tobytes())
    for degrees in (90, 180, 270):
        yield f"rot{degrees}", _encoded(image.rotate(degrees, expand=True), "JPEG", quality=90)
    yield "mirror", _encoded(ImageOps.mirror(image), "JPEG", quality=90)
    yield "grey", _encoded(image.convert("L"), "JPEG", quality=90)
    for factor in (0.7, 1.3):
        yield f"bright{factor}", _encoded(ImageEnhance.Brightness(image).enhance(factor), "JPEG", quality=90)
        yield f"contrast{factor}", _encoded(ImageEnhance.Contrast(image).enhance(factor), "JPEG", quality=90)
    yield "blur", _encoded(image.filter(ImageFilter.GaussianBlur(max(1.0, min(w, h) / 300))), "JPEG", quality=90)
    pixels = np.asarray(image, np.float32)
    noisy = np.clip(pixels + rng.normal(0, 10, pixels.shape), 0, 255).astype(np.uint8)
    yield "noise", _encoded(Image.fromarray(noisy), "JPEG", quality=90)
    for name, share in zip(CROPS, (0.5, 0.8)):
        side = share**0.5
        cw, ch = int(w * side), int(h * side)
        box = ((w - cw) // 2, (h - ch) // 2, (w - cw) // 2 + cw, (h - ch) // 2 + ch)
        yield name, _encoded(image.crop(box), "JPEG", quality=90)


def bursts(image: Image.Image, rng: np.random.Generator) -> Iterator[tuple[str, bytes]]:
    """Burst stand-ins, each its own capture: the frame shifted (2-6 %) and something moved."""
    w, h = image.size
    for pct in (2, 4, 6):
        dx, dy = int(w * pct / 100), int(h * pct / 200)
        frame = image.crop((dx, dy, w, h)).resize((w, h), Image.Resampling.LANCZOS)
        pw, ph = w // 5, h // 5
        x, y = int(rng.integers(0, w - pw)), int(rng.integers(0, h - ph))
        patch = frame.crop((x, y, x + pw, y + ph))
        frame.paste(patch, (min(w - pw, x + pw // 2), min(h - ph, y + ph // 3)))
        yield f"burst{pct}", _encoded(frame, "JPEG", quality=90)


def photo_paths() -> list[Path]:
    return sorted(p for p in PHOTOS.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})


def _make(job: tuple[int, str, str]) -> list[Row]:
    """One original's files (runs in a worker process)."""
    n, source, folder = job
    rng = np.random.default_rng(n)
    with Image.open(source) as opened:
        image = ImageOps.exif_transpose(opened).convert("RGB")
    image.thumbnail((1600, 1600))  # phone-share size: keeps the build to minutes
    base = f"{n:03d}"
    original = Path(folder) / f"{base}_original.jpg"
    original.write_bytes(_encoded(image, "JPEG", quality=95))
    rows = [(str(original), base, "original")]
    for name, data in itertools.chain(transforms(image, rng), bursts(image, rng)):
        suffix = {"webp": ".webp", "heic": ".heic"}.get(name, ".jpg")
        path = Path(folder) / f"{base}_{name}{suffix}"
        path.write_bytes(data)
        rows.append((str(path), f"{base}-{name}" if name.startswith("burst") else base, name))
    return rows


def build(originals: int) -> list[Row]:
    """The labelled set, made once per size and then read from CACHE."""
    folder = CACHE / f"n{originals}"
    listing = folder / "rows.json"
    if listing.exists():
        return [tuple(r) for r in json.loads(listing.read_text())]  # type: ignore[misc]
    folder.mkdir(parents=True, exist_ok=True)
    paths = photo_paths()
    picked = sorted(set(np.linspace(0, len(paths) - 1, min(originals, len(paths))).round().astype(int).tolist()))
    jobs = [(n, str(paths[i]), str(folder)) for n, i in enumerate(picked)]
    import pillow_heif

    pillow_heif.register_heif_opener()
    with ProcessPoolExecutor(2) as pool:
        rows = [row for made in pool.map(_make, jobs) for row in made]
    rows = _relabelled(rows, {f"{n:03d}": paths[i].stem for n, i in enumerate(picked)})
    rows += [(str(p), SAME_PIXELS.get(p.stem, f"photo-{p.stem}"), "distractor")
             for i, p in enumerate(paths) if i not in set(picked)]
    rows += [(str(p), f"hdr-{p.stem}", "hdr") for p in sorted(HDR.glob("*.jpg"))]  # each file its own capture
    listing.write_text(json.dumps(rows))
    return rows


def _relabelled(rows: list[Row], stems: dict[str, str]) -> list[Row]:
    """Originals made from one picture in two files (SAME_PIXELS) share one label: their copies
    are copies of each other."""
    named = {base: SAME_PIXELS[stem] for base, stem in stems.items() if stem in SAME_PIXELS}
    return [(path, named.get(label, label), kind) for path, label, kind in rows]


def _read(path: str) -> tuple[npt.NDArray[np.uint8], Capture, npt.NDArray[np.bool_]]:
    """Thumbnail and capture of one file read exactly as the indexer reads it (clipfind.imageload,
    reduced decode at FINGERPRINT_SIDE), and the baseline's pHash bits of the full upright picture."""
    import imagehash

    from clipfind.imageload import load_image
    from clipfind.indexer import FINGERPRINT_SIDE

    loaded = load_image(path, min_side=FINGERPRINT_SIDE)
    with Image.open(path) as opened:
        image = ImageOps.exif_transpose(opened).convert("RGB")
    return thumbnail(loaded.image), loaded.capture, imagehash.phash(image).hash.ravel()


def read_all(rows: Sequence[Row]) -> tuple[npt.NDArray[np.uint8], list[Capture], npt.NDArray[np.bool_]]:
    import pillow_heif

    pillow_heif.register_heif_opener()
    with ProcessPoolExecutor(2, initializer=pillow_heif.register_heif_opener) as pool:
        read = list(pool.map(_read, [r[0] for r in rows], chunksize=16))
    return np.stack([r[0] for r in read]), [r[1] for r in read], np.stack([r[2] for r in read])


def phash_groups(bits: npt.NDArray[np.bool_]) -> list[set[int]]:
    """The peers' baseline: pHash of the upright picture, Hamming distance <= 8, chained."""
    pairs = []
    for i in range(len(bits)):
        d = (bits[i + 1 :] != bits[i]).sum(axis=1)
        pairs += [(i, i + 1 + int(j)) for j in np.nonzero(d <= 8)[0]]
    parent = list(range(len(bits)))

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, j in pairs:
        parent[root(i)] = root(j)
    groups: dict[int, set[int]] = defaultdict(set)
    for x in range(len(bits)):
        groups[root(x)].add(x)
    return [g for g in groups.values() if len(g) > 1]


class Score:
    """Pair recall per transform (original with its copy in one group), pair precision over every
    predicted pair that involves no crop, and the burst and HDR pairs put together."""

    def __init__(self, rows: Sequence[Row], groups: Sequence[set[int]]) -> None:
        group_of = {m: g for g, members in enumerate(groups) for m in members}
        originals = {label: i for i, (_, label, kind) in enumerate(rows) if kind == "original"}
        found: dict[str, list[bool]] = defaultdict(list)
        for i, (_, label, kind) in enumerate(rows):
            if kind in ("original", "hdr", "distractor") or kind.startswith("burst"):
                continue
            o = originals[label]
            found[kind].append(o in group_of and group_of.get(i) == group_of[o])
        self.recall = {kind: float(np.mean(v)) for kind, v in found.items()}
        plain = [v for kind, vs in found.items() if kind not in CROPS for v in vs]
        self.recall_all = float(np.mean(plain))
        predicted = [(i, j) for g in groups for i, j in itertools.combinations(sorted(g), 2)
                     if rows[i][2] not in CROPS and rows[j][2] not in CROPS]
        wrong = [(i, j) for i, j in predicted if rows[i][1] != rows[j][1]]
        self.precision = 1 - len(wrong) / len(predicted) if predicted else 1.0
        self.pairs, self.wrong = len(predicted), wrong
        self.burst = sum(1 for i, j in wrong if "burst" in rows[i][2] + rows[j][2])
        self.hdr = sum(1 for i, j in wrong if "hdr" in rows[i][2] + rows[j][2])


def thumbnail_cost() -> float:
    """Milliseconds per thumbnail of a 300x224 picture (what the indexer's draft decode hands over)."""
    with Image.open(photo_paths()[0]) as opened:
        image = opened.convert("RGB").resize((300, 224))
    thumbnail(image)
    runs = 500
    t0 = time.perf_counter()
    for _ in range(runs):
        thumbnail(image)
    return (time.perf_counter() - t0) / runs * 1000


def synthetic(thumbs: npt.NDArray[np.uint8], n: int, rng: np.random.Generator) -> npt.NDArray[np.uint8]:
    """n thumbnails for a timing run: 70 % distinct pictures (random windows of 40-90 % of a real
    thumbnail's side, so many overlap like burst frames do), 20 % re-saved copies of those (light
    noise, turned or mirrored at random), 10 % smooth random pictures."""
    side = thumbs.shape[1]
    n_base, n_copy = int(n * 0.7), int(n * 0.2)
    src = rng.integers(0, len(thumbs), n_base)
    size = rng.uniform(0.4, 0.9, n_base) * side
    y0, x0 = rng.uniform(0, side - size), rng.uniform(0, side - size)
    steps = np.arange(side) / side
    ys = (y0[:, None] + size[:, None] * steps).astype(np.intp)
    xs = (x0[:, None] + size[:, None] * steps).astype(np.intp)
    base = thumbs[src[:, None, None], ys[:, :, None], xs[:, None, :]]
    picked = base[rng.integers(0, n_base, n_copy)]
    copies = oriented(picked, rng.integers(0, 8, n_copy)).astype(np.int16) + rng.integers(-4, 5, picked.shape)
    coarse = rng.integers(0, 256, (n - n_base - n_copy, 4, 4)).astype(np.uint8)
    smooth = np.stack([np.asarray(Image.fromarray(c).resize((side, side), Image.Resampling.BICUBIC)) for c in coarse])
    out = np.concatenate([base, copies.clip(0, 255).astype(np.uint8), smooth])
    return out[rng.permutation(n)]


def scale_run(thumbs: npt.NDArray[np.uint8], n: int) -> None:
    many = synthetic(thumbs, n, np.random.default_rng(1))
    t0 = time.perf_counter()
    groups = same_groups(many, [Capture()] * n)
    seconds = time.perf_counter() - t0
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"scale: same_groups on {n:,} synthetic thumbnails: {seconds:.1f} s, "
          f"{len(groups):,} groups of {sum(len(g.rows) for g in groups):,} photos; peak memory of the process {peak:.0f} MB")


def _as_sets(groups: Sequence[SameGroup]) -> list[set[int]]:
    return [set(g.rows) for g in groups]


def crop_pairs(rows: Sequence[Row]) -> dict[str, list[tuple[int, int]]]:
    """Candidate pairs for the crop check, by what they are: 'crop...' must be confirmed, the rest not."""
    stem = {Path(path).stem: i for i, (path, _, _) in enumerate(rows)}
    bases = sorted({Path(path).stem.split("_")[0] for path, _, kind in rows if kind == "original"})
    out: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for base in bases:
        o = stem[f"{base}_original"]
        c50, c80 = stem.get(f"{base}_crop50"), stem.get(f"{base}_crop80")
        frames = sorted(i for s, i in stem.items() if s.startswith(f"{base}_burst"))
        if c50 is not None:
            out["crop50"].append((o, c50))
        if c80 is not None:
            out["crop80"].append((o, c80))
        if c50 is not None and c80 is not None:
            out["crop50 in crop80"].append((c80, c50))
        out["burst: original"] += [(o, f) for f in frames]
        out["burst: burst"] += list(itertools.combinations(frames, 2))
        out["burst: crop of original"] += [(c, f) for f in frames for c in (c50, c80) if c is not None]
    whole = [i for i, (_, _, kind) in enumerate(rows) if kind in ("original", "distractor", "hdr")]
    for i, j in itertools.combinations(whole, 2):
        if rows[i][1] == rows[j][1]:
            continue
        camera = Path(rows[i][0]).stem.split("_")[0], Path(rows[j][0]).stem.split("_")[0]
        hdr = rows[i][2] == rows[j][2] == "hdr" and camera[0] == camera[1]
        out["HDR on/off" if hdr else "distinct photos"].append((i, j))
    return out


def crop_run(rows: Sequence[Row], thumbs: npt.NDArray[np.uint8], wrong: bool) -> None:
    from clipfind.cropcheck import (
        CROP_MAX_BLOCK_CHANGE,
        CROP_MAX_MEAN_CHANGE,
        MAX_AREA,
        MIN_AREA,
        MIN_CORRELATION,
        fit_crops,
    )

    print("\ncrops (clipfind.cropcheck.confirm_crops on the stored thumbnails; candidates as CLIP would propose)")
    print(f"| {'pairs':<24}| {'count':>6} | {'confirmed':>9} | {'share':>6} | {'ms/pair':>7} |")
    print(f"|{'-' * 25}|{'-' * 8}|{'-' * 11}|{'-' * 8}|{'-' * 9}|")
    total_t, total_n, false_pos = 0.0, 0, 0
    found_worst, nearest = [0.0], [(np.inf, 0.0)]  # the margin of the block limit, each side
    for name, pairs in crop_pairs(rows).items():
        t0 = time.perf_counter()
        fits = fit_crops(thumbs, np.array(pairs, np.int64))
        seconds = time.perf_counter() - t0
        total_t, total_n = total_t + seconds, total_n + len(pairs)
        hits = [f.is_crop() for f in fits]
        if name.startswith("crop"):
            found_worst += [f.worst_block for f, hit in zip(fits, hits) if hit]
        elif name != "burst: crop of original":
            false_pos += sum(hits)
            nearest += [(f.worst_block, f.area) for f in fits
                        if f.correlation >= MIN_CORRELATION and f.mean_block <= CROP_MAX_MEAN_CHANGE]
        per_pair = seconds / len(pairs) * 1000
        print(f"| {name:<24}| {len(pairs):>6} | {sum(hits):>9} | {np.mean(hits):>6.3f} | {per_pair:>7.2f} |")
        if wrong:
            for (i, j), f, hit in zip(pairs, fits, hits):
                if hit != name.startswith("crop"):
                    print(f"    {'missed' if name.startswith('crop') else 'confirmed'}: {Path(rows[i][0]).name} "
                          f"{Path(rows[j][0]).name} corr {f.correlation:.3f} worst {f.worst_block:.2f} "
                          f"mean {f.mean_block:.2f} scale {f.scale[0]:.2f}x{f.scale[1]:.2f}")
    print(f"crop check: {false_pos} false positives among distinct photos, HDR pairs and bursts; "
          f"{total_t / total_n * 1000:.2f} ms a pair on average over {total_n:,} pairs")
    inside = min(n for n in nearest if MIN_AREA <= n[1] <= MAX_AREA or n[0] == np.inf)
    print(f"margin of the block limit ({CROP_MAX_BLOCK_CHANGE}): confirmed crops reach {max(found_worst):.2f}; "
          f"other captures that fit as well (correlation, mean change) reach {inside[0]:.2f} inside the area limits "
          f"({MIN_AREA}-{MAX_AREA}), and outside them {min(nearest)[0]:.2f} at area {min(nearest)[1]:.2f}")


CLIP_STAND_IN = {"crop50": 0.86, "crop80": 0.9, "burst": 0.95, "hdr": 0.95}  # cosine to the original
# (or, for HDR, to the other exposure); other transforms 0.97: a real model puts a photo's re-saved
# copies closest, then its burst frames, then its crops, and other photos far off


def clip_stand_in(rows: Sequence[Row], rng: np.random.Generator, dim: int = 64) -> npt.NDArray[np.float32]:
    """Constructed CLIP vectors: each original's copies at the cosines above, everything else apart."""
    def unit(v: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return v / np.linalg.norm(v)

    bases: dict[str, npt.NDArray[np.float64]] = defaultdict(lambda: unit(rng.standard_normal(dim)))
    out = np.empty((len(rows), dim), np.float32)
    for i, (path, label, kind) in enumerate(rows):
        stem = Path(path).stem
        base = bases[stem.split("_")[0] if kind != "distractor" else label]
        cos = 1.0 if kind in ("original", "distractor") else CLIP_STAND_IN.get(kind.rstrip("0123456789"), 0.97)
        noise = unit(rng.standard_normal(dim) - base * (base @ rng.standard_normal(dim)))
        out[i] = unit(cos * base + (1 - cos * cos) ** 0.5 * unit(noise - base * (base @ noise)))
    return out


def tier_run(rows: Sequence[Row], thumbs: npt.NDArray[np.uint8], captures: Sequence[Capture]) -> None:
    """The same tier as the library builds it (clipfind.dupes.same_sets) with CLIP neighbours from
    constructed vectors, so crops join it: recall per transform, every wrong pair, crops included."""
    from clipfind.dupes import build_graph, contents_of, find_duplicates, same_search, same_sets
    from clipfind.records import PhotoInfo

    vectors = clip_stand_in(rows, np.random.default_rng(7))
    ids = np.arange(1, len(rows) + 1, dtype=np.int64)
    photos = [PhotoInfo(id=int(i), path=rows[i - 1][0], size=1000, mtime_ns=0, content_hash=f"h{i}",
                        width=100, height=100, taken_at=None) for i in ids.tolist()]

    def knn(q: npt.NDArray[np.float32], k: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        sims = q @ vectors.T
        top = np.argsort(-sims, axis=1)[:, :k]
        return ids[top], np.take_along_axis(sims, top, axis=1)

    t0 = time.perf_counter()
    graph = build_graph(ids, vectors, knn, 24)
    t1 = time.perf_counter()
    cache: dict[tuple[str, str], str] = {}
    contents = contents_of(photos)
    sets = same_sets(contents, *same_search(contents, ids, [t.tobytes() for t in thumbs], [c.to_text() for c in captures]),
                     graph=graph, crop_cache=cache)
    t2 = time.perf_counter()
    groups = find_duplicates(contents_of(photos), None, 0.95, same=sets)
    score = Score(rows, [{m.photo.id - 1 for m in g.members} for g in groups])
    predicted = [(i, j) for g in groups for i, j in itertools.combinations(sorted(m.photo.id - 1 for m in g.members), 2)]
    wrong = [(i, j) for i, j in predicted if rows[i][1] != rows[j][1]]
    ticked = [(p, g) for g in groups for p in g.suggested()  # a crop ticked against a picture it was cut from
              if rows[p.id - 1][2] in CROPS and rows[g.keeper.id - 1][2] != rows[p.id - 1][2]]
    print("\nsame tier with crops (clipfind.dupes.same_sets; CLIP neighbours from constructed vectors, "
          f"cosines {CLIP_STAND_IN}, others 0.97)")
    print(f"| {'transform':<16}| {'same: recall':>13} |")
    print(f"|{'-' * 17}|{'-' * 15}|")
    for kind in sorted(score.recall, key=lambda k: (k not in CROPS, k)):
        print(f"| {kind:<16}| {score.recall[kind]:>13.3f} |")
    print(f"| {'PRECISION':<16}| {1 - len(wrong) / max(len(predicted), 1):>13.4f} |")
    print(f"| {'pairs predicted':<16}| {len(predicted):>13} |")
    print(f"| {'burst pairs':<16}| {sum(1 for i, j in wrong if 'burst' in rows[i][2] + rows[j][2]):>13} |")
    print(f"| {'HDR pairs':<16}| {sum(1 for i, j in wrong if 'hdr' in rows[i][2] + rows[j][2]):>13} |")
    print(f"crops ticked for the trash against an uncropped picture: {len(ticked)} (none should be); crop pairs checked {len(cache):,} in "
          f"{t2 - t1:.1f} s with the same-photo search (graph {t1 - t0:.1f} s)")
    for i, j in wrong:
        print("    wrong:", Path(rows[i][0]).name, Path(rows[j][0]).name)
    for p, g in ticked:
        print("    ticked crop:", Path(p.path).name, "keeper", Path(g.keeper.path).name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--originals", type=int, default=30, help="photos given transforms (default 30; 114 = all)")
    parser.add_argument("--scale", type=int, default=0, help="also time same_groups on this many synthetic thumbnails")
    parser.add_argument("--wrong", action="store_true", help="list the wrong pairs")
    parser.add_argument("--no-crops", action="store_true", help="skip the crop check's section")
    parser.add_argument("--full", action="store_true", help="every photo as an original, and 100,000 for --scale")
    args = parser.parse_args()
    if args.full:
        args.originals, args.scale = len(photo_paths()), args.scale or 100_000
    t0 = time.perf_counter()
    rows = build(args.originals)
    t1 = time.perf_counter()
    thumbs, captures, bits = read_all(rows)
    t2 = time.perf_counter()
    groups = same_groups(thumbs, captures)
    t3 = time.perf_counter()
    ours, base = Score(rows, _as_sets(groups)), Score(rows, phash_groups(bits))
    kinds = sorted(ours.recall, key=lambda k: (k in CROPS, k))
    print(f"{len(rows)} files: {sum(r[2] == 'original' for r in rows)} originals with {len(kinds)} transforms, "
          f"{sum(r[2].startswith('burst') for r in rows)} burst frames, {sum(r[2] == 'hdr' for r in rows)} HDR files, "
          f"{sum(r[2] == 'distractor' for r in rows)} distractors (set {t1 - t0:.0f} s, read {t2 - t1:.0f} s, "
          f"grouped {t3 - t2:.2f} s)")
    print(f"\n| {'transform':<16}| {'same: recall':>13} | {'pHash<=8: recall':>17} |")
    print(f"|{'-' * 17}|{'-' * 15}|{'-' * 19}|")
    for kind in kinds:
        name = f"{kind} (crop)" if kind in CROPS else kind
        print(f"| {name:<16}| {ours.recall[kind]:>13.3f} | {base.recall[kind]:>17.3f} |")
    print(f"| {'RECALL, no crops':<16}| {ours.recall_all:>13.3f} | {base.recall_all:>17.3f} |")
    print(f"| {'PRECISION':<16}| {ours.precision:>13.4f} | {base.precision:>17.4f} |")
    print(f"| {'pairs predicted':<16}| {ours.pairs:>13} | {base.pairs:>17} |")
    print(f"| {'burst pairs':<16}| {ours.burst:>13} | {base.burst:>17} |")
    print(f"| {'HDR pairs':<16}| {ours.hdr:>13} | {base.hdr:>17} |")
    print(f"\ntargets (same tier, crops aside): precision >= 0.99 {'met' if ours.precision >= 0.99 else 'NOT met'}, "
          f"recall >= 0.95 {'met' if ours.recall_all >= 0.95 else 'NOT met'}, "
          f"no burst/HDR pair {'met' if ours.burst + ours.hdr == 0 else 'NOT met'}")
    if args.wrong:
        for i, j in ours.wrong:
            print("wrong:", Path(rows[i][0]).name, Path(rows[j][0]).name)
    print(f"thumbnail(300x224 RGB): {thumbnail_cost():.3f} ms (target < 2 ms); {SIDE * SIDE} bytes a photo")
    if not args.no_crops:
        crop_run(rows, thumbs, args.wrong)
        tier_run(rows, thumbs, captures)
    if args.scale:
        scale_run(thumbs, args.scale)


if __name__ == "__main__":
    main()
