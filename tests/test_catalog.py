from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from clipfind.catalog import SCHEMA_VERSION, Catalog, FileStamp
from clipfind.errors import CatalogError, ModelMismatchError
from clipfind.fingerprint import SIDE


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    cat = Catalog(tmp_path / "c.sqlite3")
    cat.bind_model("m/none", 4, "m", None)
    yield cat
    cat.close()


def vec(*xs: float) -> np.ndarray:
    v = np.array(xs, dtype=np.float32)
    return v / np.linalg.norm(v)


def test_put_photo_roundtrip_and_changed_file_keeps_id(catalog: Catalog) -> None:
    i = catalog.put_photo("/p/a.jpg", 10, 1, "h1", 40, 30, "2020-01-02T03:04:05", vec(1, 0, 0, 0))
    found = catalog.photo_by_path("/p/a.jpg")
    assert found is not None
    photo, vector = found
    assert (photo.id, photo.size, photo.width, photo.height, photo.taken_at) == (i, 10, 40, 30, "2020-01-02T03:04:05")
    np.testing.assert_array_equal(vector, vec(1, 0, 0, 0))
    j = catalog.put_photo("/p/a.jpg", 11, 2, "h2", 40, 30, None, vec(0, 1, 0, 0))
    assert j == i
    assert catalog.count("ok") == 1


def test_ids_never_reused_after_delete(catalog: Catalog) -> None:
    a = catalog.put_photo("/p/a.jpg", 1, 1, "h1", 1, 1, None, vec(1, 0, 0, 0))
    catalog.remove_paths(["/p/a.jpg"])
    b = catalog.put_photo("/p/b.jpg", 1, 1, "h2", 1, 1, None, vec(1, 0, 0, 0))
    assert b > a


def test_generation_and_vectors_since(catalog: Catalog) -> None:
    catalog.put_photo("/p/a.jpg", 1, 1, "h1", 1, 1, None, vec(1, 0, 0, 0))
    g = catalog.generation
    b = catalog.put_photo("/p/b.jpg", 1, 1, "h2", 1, 1, None, vec(0, 1, 0, 0))
    ids, vectors = catalog.vectors(since_generation=g)
    assert ids.tolist() == [b]
    assert vectors.shape == (1, 4)
    removed = catalog.remove_paths(["/p/b.jpg", "/p/missing.jpg"])
    assert removed == [b]
    assert catalog.generation > g + 1


def test_failure_recorded_and_replaces_ok_row(catalog: Catalog) -> None:
    i = catalog.put_photo("/p/a.jpg", 1, 1, "h1", 1, 1, None, vec(1, 0, 0, 0))
    j = catalog.put_failure("/p/a.jpg", 2, 2, "h9", "truncated file")
    assert i == j
    assert catalog.count("ok") == 0
    assert [(f.path, f.error) for f in catalog.failures()] == [("/p/a.jpg", "truncated file")]
    assert catalog.vectors()[0].size == 0


def test_non_utf8_path_roundtrip(catalog: Catalog) -> None:
    weird = "/p/" + b"caf\xe9 \xf0\x9f\x93\xb7.jpg".decode("utf-8", "surrogateescape")
    catalog.put_photo(weird, 1, 1, "h", 1, 1, None, vec(1, 0, 0, 0))
    assert weird in catalog.known_files()
    assert catalog.photo_by_path(weird) is not None


def test_folder_filter_does_not_match_sibling_prefix(catalog: Catalog) -> None:
    catalog.put_photo("/p/trip/a.jpg", 1, 1, "h1", 1, 1, None, vec(1, 0, 0, 0))
    catalog.put_photo("/p/trip-old/b.jpg", 1, 1, "h2", 1, 1, None, vec(1, 0, 0, 0))
    assert list(catalog.known_files("/p/trip")) == ["/p/trip/a.jpg"]
    assert len(catalog.ids_matching(folder="/p/trip")) == 1
    catalog.add_folder("/p/trip")
    assert catalog.remove_folder("/p/trip") == 1
    assert list(catalog.known_files()) == ["/p/trip-old/b.jpg"]
    assert catalog.folders() == []


def test_one_row_per_content_is_read_from_the_partial_indexes(catalog: Catalog) -> None:
    """The graph's and the same-photo search's rows: the lowest id of each content, from an index
    that holds what they read, not from the table, whose rows carry the blobs."""
    for n, (path, content) in enumerate([("/p/a.jpg", "h1"), ("/p/b.jpg", "h2"), ("/p/c.jpg", "h1")]):
        catalog.put_photo(path, 1, 1, content, 1, 1, None, vec(1, 0, 0, 0), thumb=bytes(SIDE * SIDE),
                          capture=f"cam\t2020:01:01 00:00:0{n}\t\t")
    catalog.put_photo("/p/waits.jpg", 1, 1, "h3", 1, 1, None, None, thumb=b"short")
    assert catalog.one_per_content().tolist() == [1, 2]
    ids, hashes, captures = catalog.fingerprint_rows()
    assert ids.tolist() == [1, 2] and hashes == ["h1", "h2"] and captures[0].endswith("00:00:00\t\t")
    np.testing.assert_array_equal(catalog.thumbs(np.array([2, 1])), np.zeros((2, SIDE, SIDE), np.uint8))
    for sql, index in (("SELECT MIN(id) FROM files WHERE status = 'ok' AND vec_gen IS NOT NULL GROUP BY content_hash",
                        "COVERING INDEX files_embedded"),
                       ("SELECT MIN(id), content_hash, capture FROM files WHERE status = 'ok' AND length(thumb) = "
                        f"{SIDE * SIDE} GROUP BY content_hash", "INDEX files_fingerprinted")):
        plan = " ".join(str(r[-1]) for r in catalog._db.execute("EXPLAIN QUERY PLAN " + sql))
        assert index in plan, plan


def test_known_files_by_folder_range_or_by_exact_paths(catalog: Catalog) -> None:
    """A folder's rows come from a range of the path index: nested folders in, siblings that share the
    prefix out (`/p/trip-old`, and `/p/trip0` whose next byte sorts right after the separator)."""
    for n, path in enumerate(["/p/trip/a.jpg", "/p/trip/deep/b.jpg", "/p/trip-old/c.jpg", "/p/trip0/d.jpg",
                              "/p/tri/e.jpg", "/p/trip.jpg"]):
        catalog.put_photo(path, 1, 1, f"h{n}", 1, 1, None, vec(1, 0, 0, 0))
    assert sorted(catalog.known_files("/p/trip")) == ["/p/trip/a.jpg", "/p/trip/deep/b.jpg"]
    assert sorted(catalog.known_files("/p/trip/")) == ["/p/trip/a.jpg", "/p/trip/deep/b.jpg"]
    assert sorted(catalog.known_files("/")) == sorted(catalog.known_files()) and len(catalog.known_files()) == 6
    assert sorted(catalog.known_files(paths=["/p/trip0/d.jpg", "/p/trip/a.jpg", "/p/none.jpg"])) == [
        "/p/trip/a.jpg", "/p/trip0/d.jpg"]
    assert catalog.known_files(paths=[]) == {}
    assert [catalog.files_in(f) for f in ("/p/trip", "/p/trip-old", "/p", "/q")] == [2, 1, 6, 0]


def test_date_filter_uses_capture_date_then_mtime(catalog: Catalog) -> None:
    catalog.put_photo("/p/old.jpg", 1, 1, "h1", 1, 1, "2001-05-05T10:00:00", vec(1, 0, 0, 0))
    mtime_2020 = 1_590_000_000 * 10**9  # May 2020
    catalog.put_photo("/p/new.jpg", 1, mtime_2020, "h2", 1, 1, None, vec(1, 0, 0, 0))
    old = catalog.ids_matching(date_to="2010-01-01T00:00:00")
    new = catalog.ids_matching(date_from="2019-01-01T00:00:00", date_to="2021-01-01T00:00:00")
    assert len(old) == 1 and len(new) == 1 and old[0] != new[0]


def test_model_mismatch_refused_and_reembed_clears(catalog: Catalog) -> None:
    catalog.put_photo("/p/a.jpg", 1, 1, "h1", 1, 1, None, vec(1, 0, 0, 0))
    with pytest.raises(ModelMismatchError, match="--reembed"):
        catalog.bind_model("other/tag", 8, "other", "tag")
    catalog.bind_model("other/tag", 8, "other", "tag", reembed=True)
    assert catalog.count("ok") == 0
    assert (catalog.model_identity, catalog.dim, catalog.model_name, catalog.model_pretrained) == ("other/tag", 8, "other", "tag")


def test_move_keeps_id_and_vector(catalog: Catalog) -> None:
    i = catalog.put_photo("/p/a.jpg", 1, 1, "h1", 1, 1, None, vec(1, 2, 3, 4))
    catalog.move(i, "/q/a.jpg", 1, 5)
    found = catalog.photo_by_path("/q/a.jpg")
    assert found is not None and found[0].id == i
    np.testing.assert_allclose(found[1], vec(1, 2, 3, 4))
    assert catalog.photo_by_path("/p/a.jpg") is None


def test_newer_schema_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    Catalog(path).close()
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(CatalogError, match="newer clipfind"):
        Catalog(path)


def test_not_a_database_gives_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(CatalogError, match="cannot open the catalog"):
        Catalog(path)


def test_wal_and_schema_version_stored(catalog: Catalog, tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "c.sqlite3") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == str(SCHEMA_VERSION)


def test_not_duplicate_marks_one_row_per_content(catalog: Catalog) -> None:
    catalog.add_mark({"a": 1, "b": 1, "c": 1})
    catalog.add_mark({"d": 2})  # two byte-identical copies of d
    ignored = catalog.ignored_pairs()["same"]
    assert ("a", "b") in ignored and ("c", "a") in ignored
    assert ("a", "d") not in ignored and ("a", "a") not in ignored
    assert ("d", "d") in ignored
    assert len(catalog.marks()) == 4


def test_marking_a_thousand_photos_writes_a_thousand_rows(catalog: Catalog, tmp_path: Path) -> None:
    """Pairs would be 499,500 rows (the catalog grew from 0.86 MB to 41 MB)."""
    catalog.add_mark({f"h{i}": 1 for i in range(1000)})
    assert len(catalog.marks()) == 1000
    assert ("h3", "h999") in catalog.ignored_pairs()["similar"]


def test_remove_marks_takes_back_marks_holding_all_given(catalog: Catalog) -> None:
    catalog.add_mark({"a": 1, "b": 1})
    catalog.add_mark({"a": 1, "c": 1})
    assert catalog.remove_marks(["a", "b"]) == 1
    assert ("a", "b") not in catalog.ignored_pairs()["same"] and ("a", "c") in catalog.ignored_pairs()["same"]
    assert catalog.remove_marks(["a"]) == 1
    assert not any(catalog.ignored_pairs().values())


def test_version_1_catalog_is_upgraded_keeping_marks_and_photos(tmp_path: Path) -> None:
    path = tmp_path / "v1.sqlite3"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE folders (path BLOB PRIMARY KEY, added_at REAL NOT NULL);
        CREATE TABLE files (id INTEGER PRIMARY KEY AUTOINCREMENT, path BLOB NOT NULL UNIQUE, size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL, content_hash TEXT, width INTEGER, height INTEGER, taken_at TEXT,
            status TEXT NOT NULL, error TEXT, vec_gen INTEGER, vector BLOB, indexed_at REAL NOT NULL);
        CREATE TABLE not_duplicates (hash_a TEXT NOT NULL, hash_b TEXT NOT NULL, PRIMARY KEY (hash_a, hash_b));
        INSERT INTO meta VALUES ('generation', '3');
        INSERT INTO not_duplicates VALUES ('a', 'b'), ('c', 'c');
        PRAGMA user_version = 1;
    """)
    db.execute("INSERT INTO files (path, size, mtime_ns, content_hash, status, vec_gen, vector, indexed_at) "
               "VALUES (?, 1, 1, 'h', 'ok', 1, ?, 0)", (b"/p/a.jpg", vec(1, 0, 0, 0).tobytes()))
    db.commit()
    db.close()
    cat = Catalog(path)
    try:
        for ignored in cat.ignored_pairs().values():  # marks made before tiers hold in every tier
            assert ("a", "b") in ignored and ("c", "c") in ignored and ("a", "c") not in ignored
        photo = cat.photos()[0]
        assert photo.path == "/p/a.jpg" and photo.file_key is None
        assert cat.known_files()["/p/a.jpg"].ino is None  # the next pass hashes it again
        assert cat.unfingerprinted() == [(photo.id, "/p/a.jpg", "h")]  # and fingerprints it
    finally:
        cat.close()


def test_version_2_catalog_gains_fingerprints_without_a_new_generation(tmp_path: Path) -> None:
    path = tmp_path / "v2.sqlite3"
    cat = Catalog(path)
    first = cat.put_photo("/p/a.jpg", 1, 1, "ha", 1, 1, None, vec(1, 0, 0, 0))
    cat.close()
    with sqlite3.connect(path) as db:  # as schema 2 left it
        db.execute("DROP INDEX files_fingerprinted")
        db.execute("ALTER TABLE files DROP COLUMN thumb")
        db.execute("ALTER TABLE files DROP COLUMN capture")
        db.execute("PRAGMA user_version = 2")
    cat = Catalog(path)
    try:
        assert cat.unfingerprinted() == [(first, "/p/a.jpg", "ha")]
        assert len(cat.fingerprints()[0]) == 0
        generation, counted = cat.generation, cat.fingerprinted
        cat.set_fingerprints([(first, bytes(range(256)) * 4, "Canon\t2020:01:02 03:04:05\t12\t")])
        ids, thumbs, captures = cat.fingerprints()
        assert ids.tolist() == [first] and thumbs == [bytes(range(256)) * 4] and captures[0].startswith("Canon")
        assert cat.unfingerprinted() == []
        # The vectors did not change, so the neighbour graph (keyed by generation) stays valid.
        assert cat.generation == generation and cat.fingerprinted == counted + 1
        second = cat.put_photo("/p/b.jpg", 1, 1, "hb", 1, 1, None, vec(0, 1, 0, 0), thumb=b"t", capture=None)
        assert cat.vector_by_hash("hb").thumb == b"t" and second not in [i for i, _, _ in cat.unfingerprinted()]
    finally:
        cat.close()


def test_forget_keeps_photos_another_indexed_folder_covers(catalog: Catalog) -> None:
    for path in ("/p/par/child/a.jpg", "/p/par/b.jpg", "/p/other/c.jpg"):
        catalog.put_photo(path, 1, 1, path, 1, 1, None, vec(1, 0, 0, 0))
    catalog.add_folder("/p/par/child")
    catalog.add_folder("/p/par")
    assert catalog.remove_folder("/p/par") == 1  # b.jpg only: child is still indexed
    assert sorted(catalog.known_files()) == ["/p/other/c.jpg", "/p/par/child/a.jpg"]
    catalog.add_folder("/p/par")
    assert catalog.remove_folder("/p/par/child") == 0  # par still covers child
    assert "/p/par/child/a.jpg" in catalog.known_files()
    assert catalog.folders() == ["/p/par"]


def _schema_3(path: Path) -> None:
    """Turn a new catalog into what schema 3 left: marks without a tier, no choices, no trashed rows."""
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE choices")
        db.execute("DROP TABLE trashed")
        db.execute("ALTER TABLE not_duplicate_marks DROP COLUMN tier")
        db.execute("PRAGMA user_version = 3")


def test_version_3_catalog_keeps_its_marks_for_every_tier(tmp_path: Path) -> None:
    path = tmp_path / "v3.sqlite3"
    cat = Catalog(path)
    cat.add_mark({"a": 1, "b": 1})
    cat.close()
    _schema_3(path)
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO not_duplicate_marks VALUES (2, 'c', 2)")  # as schema 3 wrote them
    cat = Catalog(path)
    try:
        for tier, ignored in cat.ignored_pairs().items():
            assert ("a", "b") in ignored and ("c", "c") in ignored, tier
        assert cat.mark_rows()[0][1] is None
        # A new mark holds in the tier it was made in only.
        cat.add_mark({"d": 1, "e": 1}, "same")
        ignored = cat.ignored_pairs()
        assert ("d", "e") in ignored["same"] and ("d", "e") not in ignored["similar"]
        assert ("d", "e") not in ignored["identical"]
        assert cat.remove_mark(3) and not cat.remove_mark(3)
        assert ("d", "e") not in cat.ignored_pairs()["same"]
        cat.save_choices({"/p/a.jpg": True})
        assert cat.choices() == {"/p/a.jpg": True}
    finally:
        cat.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 7


def test_crop_checks_are_kept_and_a_version_4_catalog_gains_their_table(tmp_path: Path) -> None:
    path = tmp_path / "v4.sqlite3"
    Catalog(path).close()
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE crop_checks")
        db.execute("PRAGMA user_version = 4")
    cat = Catalog(path)
    try:
        assert cat.crop_checks() == {}
        cat.add_crop_checks([(("a", "b"), "b"), (("a", "c"), "")])
        cat.add_crop_checks([(("a", "c"), "")])  # again: no error, no second row
        assert cat.crop_checks() == {("a", "b"): "b", ("a", "c"): ""}
    finally:
        cat.close()


def test_photos_carry_camera_and_gps_from_the_capture_record(catalog: Catalog) -> None:
    catalog.put_photo("/p/a.jpg", 1, 1, "ha", 1, 1, None, vec(1, 0, 0, 0),
                      capture="Canon EOS\t2020:01:02 03:04:05\t12\t1")
    catalog.put_photo("/p/b.jpg", 1, 1, "hb", 1, 1, None, vec(0, 1, 0, 0),
                      capture="Pixel 7\t2020:01:02 03:04:05\t")  # schema 3's three fields: no GPS record
    catalog.put_photo("/p/c.jpg", 1, 1, "hc", 1, 1, None, vec(0, 0, 1, 0))
    a, b, c = catalog.photos()
    assert (a.camera, a.gps) == ("Canon EOS", True)
    assert (b.camera, b.gps) == ("Pixel 7", False)
    assert (c.camera, c.gps) == (None, False)
    assert catalog.photo_by_path("/p/a.jpg")[0] == a
    assert catalog.photos([b.id]) == [b]


def test_choices_survive_a_reopen_and_follow_moves_and_removals(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    cat = Catalog(path)
    for name in ("a", "b", "c"):
        cat.put_photo(f"/p/{name}.jpg", 1, 1, name, 1, 1, None, vec(1, 0, 0, 0))
    cat.save_choices({"/p/a.jpg": True, "/p/b.jpg": False, "/p/c.jpg": True})
    cat.save_choices({"/p/b.jpg": True})  # a second click on the same photo
    cat.close()
    cat = Catalog(path)
    try:
        assert cat.choices() == {"/p/a.jpg": True, "/p/b.jpg": True, "/p/c.jpg": True}
        cat.remove_paths(["/p/a.jpg"])
        cat.move(cat.known_files()["/p/c.jpg"].id, "/p/renamed.jpg", 1, 1)
        assert cat.choices() == {"/p/b.jpg": True, "/p/renamed.jpg": True}
        cat.clear_choices()
        assert cat.choices() == {}
    finally:
        cat.close()


def test_keeper_rules_round_trip_and_unreadable_rules_fall_back(catalog: Catalog) -> None:
    from clipfind.records import KeeperRules

    assert catalog.keeper_rules() == KeeperRules()
    rules = KeeperRules(keep=("/p/a.jpg",), protect=("/p/Originals",), formats=("raw", "jpeg"), prefer_gps=True)
    catalog.set_keeper_rules(rules)
    assert catalog.keeper_rules() == rules
    catalog._set_meta("keeper_rules", "{not json")
    assert catalog.keeper_rules() == KeeperRules()


def test_trashed_rows_keep_the_last_batch_whole(catalog: Catalog) -> None:
    ids = [catalog.put_photo(f"/p/{n}.jpg", 3, 7, n, 2, 2, None, vec(1, i, 0, 0), thumb=b"t" + n.encode(),
                             capture=f"Cam\t\t\t{'1' if i else ''}") for i, n in enumerate("abc")]
    catalog.save_choices({"/p/a.jpg": True})
    first = catalog.next_trash_batch()
    assert catalog.forget_trashed("/p/a.jpg", first, 100.0) == ids[0]
    assert catalog.choices() == {}
    when, photos = catalog.trashed()
    assert when == 100.0 and [p.path for p in photos] == ["/p/a.jpg"] and catalog.photo_by_path("/p/a.jpg") is None
    second = catalog.next_trash_batch()
    assert second == first + 1
    catalog.forget_trashed("/p/b.jpg", second, 200.0)
    catalog.forget_trashed("/p/c.jpg", second, 200.0)
    when, photos = catalog.trashed()  # the new batch replaced the old one
    assert when == 200.0 and [p.path for p in photos] == ["/p/b.jpg", "/p/c.jpg"] and photos[1].gps
    generation = catalog.generation
    assert catalog.put_back_trashed([("/p/b.jpg", FileStamp(1, 2, 3))]) == [ids[1]]
    assert catalog.generation == generation + 1
    photo, vector = catalog.photo_by_path("/p/b.jpg")
    assert photo.id == ids[1] and photo.file_key == (1, 2) and np.allclose(vector, vec(1, 1, 0, 0))
    assert catalog.vector_by_hash("b").thumb == b"tb"
    assert catalog.vectors(since_generation=generation)[0].tolist() == [ids[1]]  # an index catches up
    assert [p.path for p in catalog.trashed()[1]] == ["/p/c.jpg"]
    catalog.drop_trashed(["/p/c.jpg"])
    assert catalog.trashed() is None


# -- photos recorded without the model (issue 11) --------------------------------------------
def test_a_photo_without_a_vector_waits_and_every_vector_reader_skips_it(catalog: Catalog) -> None:
    from clipfind.annindex import VectorIndex, sync_index

    a = catalog.put_photo("/p/a.jpg", 1, 1, "h1", 1, 1, None, vec(1, 0, 0, 0), thumb=b"t1")
    index = VectorIndex(4, catalog.generation)
    index.add(*catalog.vectors())
    b = catalog.put_photo("/p/b.jpg", 1, 1, "h2", 1, 1, None, None, thumb=b"t2")
    assert catalog.waiting() == 1 and catalog.count("ok") == 2
    assert catalog.vectors()[0].tolist() == [a] and catalog.vectors(ids=[a, b])[0].tolist() == [a]
    assert catalog.embedded_ids() == {a} and catalog.ok_ids() == {a, b}
    assert catalog.fingerprints()[0].tolist() == [a, b]  # the same tier sees it
    known = catalog.known_files()
    assert not known["/p/a.jpg"].waiting and known["/p/b.jpg"].waiting
    assert catalog.photo_by_path("/p/b.jpg") is None and catalog.photo_at("/p/b.jpg").id == b
    assert catalog.vector_by_hash("h2") is None and catalog.vector_by_hash("h2", embedded=False).vector is None
    assert catalog.ids_with_hash("h2") == [(b, "/p/b.jpg")] and catalog.ids_with_hash("h2", embedded=True) == []
    # a's file changed while the model could not be loaded: its old vector leaves the index.
    catalog.put_photo("/p/a.jpg", 2, 2, "h3", 1, 1, None, None)
    assert not catalog.has_vectors() and catalog.waiting() == 2
    sync_index(index, catalog)
    assert index.labels == set()


def test_binding_a_model_keeps_the_photos_that_wait_for_one(tmp_path: Path) -> None:
    cat = Catalog(tmp_path / "c.sqlite3")
    try:
        b = cat.put_photo("/p/b.jpg", 1, 1, "h2", 1, 1, None, None, thumb=b"t2")
        cat.bind_model("m/none", 4, "m", None)  # the first run with the model
        assert cat.photo_at("/p/b.jpg").id == b and cat.waiting() == 1
        cat.put_photo("/p/a.jpg", 1, 1, "h1", 1, 1, None, vec(1, 0, 0, 0))
        cat.bind_model("other/none", 4, "other", None, reembed=True)  # embedded rows go, waiting ones stay
        assert cat.photo_at("/p/a.jpg") is None and cat.photo_at("/p/b.jpg").id == b
        cat.check_model("third/none")  # only waiting photos: no vectors of another model to mix with
    finally:
        cat.close()


def test_a_photo_put_back_from_the_trash_still_waits(catalog: Catalog) -> None:
    catalog.put_photo("/p/b.jpg", 1, 1, "h2", 1, 1, None, None, thumb=b"t2")
    catalog.forget_trashed("/p/b.jpg", catalog.next_trash_batch(), 1.0)
    assert catalog.count("ok") == 0
    assert catalog.put_back_trashed([("/p/b.jpg", FileStamp(1, 2, 3))])
    assert catalog.waiting() == 1 and catalog.vectors()[0].size == 0


def test_timeline_is_newest_first_by_capture_then_file_date_in_months(catalog: Catalog) -> None:
    from clipfind.records import FolderNode, Timeline

    mtime_2020 = 1_590_000_000 * 10**9  # May 2020 (the file's date: no capture date)
    catalog.put_photo("/p/old.jpg", 1, 1, "h1", 1, 1, "2001-05-05T10:00:00", vec(1, 0, 0, 0))
    catalog.put_photo("/p/sub/new.jpg", 1, mtime_2020, "h2", 1, 1, None, vec(1, 0, 0, 0))
    catalog.put_photo("/p/sub/newer.jpg", 1, 1, "h3", 1, 1, "2023-01-31T23:00:00", vec(1, 0, 0, 0))
    catalog.put_photo("/p/sub/same.jpg", 1, 1, "h4", 1, 1, "2023-01-02T08:00:00", vec(1, 0, 0, 0))
    catalog.put_failure("/p/broken.jpg", 1, 1, None, "unreadable")
    timeline = Timeline.of(catalog.timeline())
    assert [p.path for p in timeline.photos] == ["/p/sub/newer.jpg", "/p/sub/same.jpg", "/p/sub/new.jpg", "/p/old.jpg"]
    assert timeline.dates[2].startswith("2020-05")
    assert [(m.label, m.start, m.count) for m in timeline.months] == [
        ("January 2023", 0, 2), ("May 2020", 2, 1), ("May 2001", 3, 1)]
    narrowed = catalog.timeline("/p/sub", date_from="2021-01-01T00:00:00")
    assert [p.path for p, _ in narrowed] == ["/p/sub/newer.jpg", "/p/sub/same.jpg"]
    assert Timeline.of([]).months == ()

    assert catalog.photo_folders() == {"/p": 1, "/p/sub": 3}
    catalog.put_photo("/p/sub/deep/er/x.jpg", 1, 1, "h5", 1, 1, None, vec(1, 0, 0, 0))
    [root] = FolderNode.tree(["/p", "/p/sub"], catalog.photo_folders())  # /p/sub is inside /p: one tree
    assert (root.path, root.photos, root.name) == ("/p", 5, "p")
    [sub] = root.children
    assert (sub.path, sub.photos) == ("/p/sub", 4)
    assert [(c.path, c.photos) for c in sub.children] == [("/p/sub/deep", 1)]
    assert sub.children[0].children[0] == FolderNode("/p/sub/deep/er", 1)


@pytest.mark.slow
def test_timeline_of_100k_photos_is_whole_and_newest_first(tmp_path: Path) -> None:
    """At library scale (its time is a benchmark's: about 0.35 s of SQL and 0.3 s building the rows at 100k
    photos on a busy 2-core machine, off the GUI thread in the app)."""
    from clipfind.catalog import to_db
    from clipfind.records import Timeline

    cat = Catalog(tmp_path / "big.sqlite3")
    rows = [(to_db(f"/photos/y{i % 20}/m{i % 7}/IMG_{i:06d}.jpg"), 1000, 1_300_000_000_000_000_000 + i * 10**12,
             f"h{i}", None if i % 3 == 0 else f"20{10 + i % 15:02d}-{1 + i % 12:02d}-01T12:00:00", "ok", 0.0)
            for i in range(100_000)]
    with cat.transaction():
        cat._db.executemany("INSERT INTO files (path, size, mtime_ns, content_hash, taken_at, status, indexed_at) "
                            "VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    timeline = Timeline.of(cat.timeline())
    folders = cat.photo_folders()
    cat.close()
    assert len(timeline.photos) == 100_000 and sum(m.count for m in timeline.months) == 100_000
    assert list(timeline.dates) == sorted(timeline.dates, reverse=True) and len(folders) == 140
    assert [m.month for m in timeline.months] == sorted({d[:7] for d in timeline.dates}, reverse=True)
