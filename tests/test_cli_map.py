"""`clipfind map` (issue 13, the JSON contract scripts rely on): `--json` prints one object per
indexed photo with path, x, y (finite floats) and cluster (an int, -1 for noise); `--png` draws
the map. The layout is kept in the home per catalog generation, extended after new photos without
moving the old ones, and computed again when its file is damaged.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from PIL import Image

from clipfind.home import MAP_FILE
from tests.helpers import copy_photos, needs_shared_data
from tests.test_cli_contracts import cli

pytestmark = needs_shared_data


@pytest.fixture
def library(tiny_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """20 real photos and a byte copy of one, indexed with the tiny random model."""
    folder = tmp_path / "pics"
    copy_photos(folder, 20)
    shutil.copy2(folder / "kodim01.png", folder / "copy_of_kodim01.png")
    code, _, err = cli(capsys, "index", str(folder))
    assert code == 0, err
    return folder


def as_points(out: str) -> dict[str, dict]:
    rows = json.loads(out)
    assert isinstance(rows, list)
    for row in rows:
        assert set(row) == {"path", "x", "y", "cluster"}
        assert isinstance(row["x"], float) and isinstance(row["y"], float)
        assert math.isfinite(row["x"]) and math.isfinite(row["y"])
        assert isinstance(row["cluster"], int) and row["cluster"] >= -1
    return {row["path"]: row for row in rows}


def test_json_has_every_indexed_photo_and_copies_share_a_point(library: Path, tiny_env: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "map", "--json")
    assert code == 0, err
    points = as_points(out)
    assert set(points) == {str(p) for p in library.iterdir()}
    original, copy = points[str(library / "kodim01.png")], points[str(library / "copy_of_kodim01.png")]
    assert (original["x"], original["y"], original["cluster"]) == (copy["x"], copy["y"], copy["cluster"])
    assert len({(p["x"], p["y"]) for p in points.values()}) == 20, "one point per content"
    assert (tiny_env / MAP_FILE).is_file()

    # The same catalog: the same map, read from the home.
    stamp = (tiny_env / MAP_FILE).stat().st_mtime_ns
    code, again, _ = cli(capsys, "map", "--json")
    assert code == 0 and as_points(again) == points
    assert (tiny_env / MAP_FILE).stat().st_mtime_ns == stamp


@pytest.mark.parametrize("search", ["exact", "index"])
def test_new_photos_join_the_map_without_moving_the_others(library: Path, tiny_env: Path, search: str,
                                                          capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    if search == "index":  # as a library over EXACT_LIMIT photos: neighbours from the HNSW index
        monkeypatch.setattr("clipfind.library.EXACT_LIMIT", 0)
    before = as_points(cli(capsys, "map", "--json")[1])
    copy_photos(library / "more", 3, "pexels_interior")
    (library / "kodim02.png").unlink()
    assert cli(capsys, "index")[0] == 0
    code, out, err = cli(capsys, "map", "--json")
    assert code == 0, err
    after = as_points(out)
    assert str(library / "kodim02.png") not in after
    assert len([p for p in after if "/more/" in p]) == 3
    for path, point in before.items():
        if path in after:
            assert after[path] == point, "an old photo moved"


def test_a_damaged_map_file_is_computed_again(library: Path, tiny_env: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    first = as_points(cli(capsys, "map", "--json")[1])
    (tiny_env / MAP_FILE).write_bytes(b"PK\x03\x04 not a zip")
    code, out, err = cli(capsys, "map", "--json")
    assert code == 0, err
    assert as_points(out) == first, "a fixed seed: the same map again"


def test_png_draws_the_map(library: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "out" / "map.png"
    target.parent.mkdir()
    code, out, err = cli(capsys, "map", "--png", str(target), "--size", "400")
    assert code == 0, err
    assert "21 photos" in out and "thumbnail" in out
    with Image.open(target) as image:
        assert image.format == "PNG" and image.size == (400, 400)
        assert len(set(image.convert("RGB").getdata())) > 100, "thumbnails, not a blank canvas"
    assert [p.name for p in target.parent.iterdir()] == ["map.png"]


def test_map_options(tiny_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "map", "--json")
    assert code == 0 and json.loads(out) == []
    code, _, err = cli(capsys, "map", "--json", "--png", str(tmp_path / "m.png"))
    assert code == 2 and "not allowed with" in err
    code, _, err = cli(capsys, "map", "--png", str(tmp_path / "m.png"), "--size", "10")
    assert code == 1 and "at least 64" in err


def test_the_facade_names_clusters_from_a_vocabulary(library: Path, tiny_env: Path) -> None:
    import numpy as np

    from clipfind.library import Library, MapCluster, MapPoint, PhotoMap

    lib = Library(tiny_env)
    try:
        dim = lib.catalog.dim
        texts = ["beach", "snow", "city"]
        phrases = np.random.default_rng(0).standard_normal((3, dim)).astype(np.float32)
        photo_map = lib.photo_map((texts, phrases))
        assert isinstance(photo_map, PhotoMap) and len(photo_map) == 21 and photo_map.xy.shape == (21, 2)
        assert all(isinstance(p, MapPoint) for p in photo_map.points())
        for cluster in photo_map.clusters:
            assert isinstance(cluster, MapCluster) and cluster.names and set(cluster.names) <= set(texts)
        assert lib.photo_map(named=False).clusters == tuple(
            MapCluster(c.cluster, (), c.size, c.x, c.y) for c in photo_map.clusters), "named=False: unnamed"
    finally:
        lib.close()


def test_clusters_are_named_by_the_tag_vocabulary_by_default(library: Path, tiny_env: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    from clipfind.library import Library

    lib = Library(tiny_env)
    try:
        tags = set(lib.tag_phrases()[0])
        photo_map = lib.photo_map()
    finally:
        lib.close()
    assert photo_map.clusters, "20 photos of a few scenes make at least one cluster"
    for cluster in photo_map.clusters:
        assert cluster.names and set(cluster.names) <= tags
    code, out, err = cli(capsys, "map")
    assert code == 0, err
    for cluster in photo_map.clusters:
        assert f"({', '.join(cluster.names)})" in out, "the command prints each cluster's names"


def test_without_the_text_tower_the_map_is_unnamed(library: Path, tiny_env: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from clipfind.errors import ModelLoadError
    from clipfind.library import Library

    def offline(self: Library) -> None:
        raise ModelLoadError("no weights: offline")

    monkeypatch.setattr(Library, "tag_phrases", offline)
    lib = Library(tiny_env)
    try:
        photo_map = lib.photo_map()
        work = lib.map_work()
    finally:
        lib.close()
    assert len(photo_map) == 21 and all(c.names == () for c in photo_map.clusters)
    assert work.size == 20 and not work.lays_out, "the layout is kept: the second map only reads it"
    assert work.run().xy.tolist() == photo_map.xy.tolist()
    code, out, err = cli(capsys, "map")
    assert code == 0 and "(" not in out and "clusters unnamed" in err


def test_json_does_not_load_the_text_tower(library: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    from clipfind.library import Library

    def refuse(self: Library) -> None:
        raise AssertionError("--json has no names: no text tower")

    monkeypatch.setattr(Library, "tag_phrases", refuse)
    code, out, err = cli(capsys, "map", "--json")
    assert code == 0, err
