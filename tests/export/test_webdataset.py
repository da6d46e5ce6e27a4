"""WebDataset shards read back with plain tarfile and with the webdataset package: every image's
bytes, every JSON, keys, shard boundaries, determinism, stale shards, hostile names, errors."""

from __future__ import annotations

import gc
import json
import os
import shutil
import tarfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from framefleet.errors import ConfigError, OutputError
from framefleet.export import sample_key, shard_path, shard_prefix, write_webdataset
from tests.export.conftest import T0, Job, grid, write_job

EXTENSIONS = {"jpg", "png", "webp"}


def read_shards(shards: list[Path]) -> list[tuple[str, str, bytes, dict[str, Any]]]:
    """(key, image extension, image bytes, json) per sample, in order, checking the layout."""
    samples = []
    for shard in shards:
        with tarfile.open(shard) as tar:
            members = tar.getmembers()
            assert len(members) % 2 == 0
            for image, meta in zip(members[::2], members[1::2], strict=True):
                key, ext = image.name.split(".")
                assert meta.name == f"{key}.json" and ext in EXTENSIONS
                for m in (image, meta):
                    assert (m.mtime, m.uid, m.gid, m.uname, m.gname, m.mode) == (
                        0,
                        0,
                        0,
                        "",
                        "",
                        0o644,
                    )
                    assert m.isfile()
                data = tar.extractfile(image).read()  # type: ignore[union-attr]
                text = tar.extractfile(meta).read()  # type: ignore[union-attr]
                samples.append((key, ext, data, json.loads(text)))
    return samples


def check_equal(job: Job, shards: list[Path], *, sources: bool) -> None:
    samples = read_shards(shards)
    images = [line for line in job.lines if "path" in line]
    assert len(samples) == len(images)
    for (key, ext, data, meta), line in zip(samples, images, strict=True):
        assert key == sample_key(line["path"]) and "." not in key and "/" not in key
        assert data == (job.out / line["path"]).read_bytes()
        assert ext == line["path"].rsplit(".", 1)[1]
        expected = dict(line)
        if sources:
            row = job.sources[(line["record_id"], line["content"])]
            expected["source"] = {k: row[k] for k in meta["source"]}
            assert set(meta["source"]) >= {"id", "path", "tags", "start_timestamp", "database_id"}
        assert meta == expected


def test_shards_equal_the_manifest(real_job: Job, tmp_path: Path) -> None:
    shards = write_webdataset(
        real_job.manifest,
        real_job.out,
        dest=tmp_path / "s/shard",
        shard_size=5,
        sources=real_job.sources,
    )
    assert [s.name for s in shards] == [f"shard-{i:06d}.tar" for i in range(5)]  # 24 images
    check_equal(real_job, shards, sources=True)


@pytest.mark.filterwarnings("ignore::ResourceWarning")  # webdataset leaves its last shard open
def test_the_webdataset_package_reads_them(real_job: Job, tmp_path: Path) -> None:
    wds = pytest.importorskip("webdataset")
    shards = write_webdataset(
        real_job.manifest, real_job.out, dest=tmp_path / "shard", shard_size=7
    )
    urls = [str(s) for s in shards]
    samples = list(wds.WebDataset(urls, shardshuffle=False))
    assert [s["__key__"] for s in samples] == [sample_key(line["path"]) for line in real_job.lines]
    for sample, line in zip(samples, real_job.lines, strict=True):
        assert sample["jpg"] == (real_job.out / line["path"]).read_bytes()
        assert json.loads(sample["json"]) == line
    loader = wds.WebDataset(urls, shardshuffle=False).decode("rgb8").to_tuple("jpg", "json")
    decoded = list(loader)
    assert decoded[0][0].shape == (48, 64, 3) and decoded[0][1] == real_job.lines[0]
    del samples, loader, decoded
    gc.collect()  # its open files are closed here, under this test's warning filter


def test_default_destination(tmp_path: Path) -> None:
    job = write_job(tmp_path / "out", grid("r", "c", 3), job_id="j 1")
    shards = write_webdataset(job.manifest, job.out)
    assert shards == [tmp_path / "out/_exports/j 1/shard-000000.tar"]
    assert shard_prefix(job.out, job.manifest) == tmp_path / "out/_exports/j 1/shard"
    check_equal(job, shards, sources=False)


@pytest.mark.parametrize(
    ("images", "shard_size", "sizes"),
    [
        (0, 3, []),
        (1, 3, [1]),
        (3, 3, [3]),
        (6, 3, [3, 3]),
        (7, 3, [3, 3, 1]),
        (4, 1, [1, 1, 1, 1]),
        (5, 1000, [5]),
    ],
)
def test_shard_boundaries(tmp_path: Path, images: int, shard_size: int, sizes: list[int]) -> None:
    job = write_job(tmp_path / "out", grid("r", "c", images))
    shards = write_webdataset(job.manifest, job.out, shard_size=shard_size)
    assert [len(read_shards([s])) for s in shards] == sizes
    check_equal(job, shards, sources=False)


@pytest.mark.parametrize("bad", [0, -1, True, 2.5, "10", 10_000_001])
def test_bad_shard_sizes(tmp_path: Path, bad: object) -> None:
    job = write_job(tmp_path / "out", grid("r", "c", 1))
    with pytest.raises(
        ConfigError, match=r"shard_size must be a whole number of images from 1 to 10,000,000"
    ):
        write_webdataset(job.manifest, job.out, shard_size=bad)  # type: ignore[arg-type]


def test_same_bytes_on_every_run_and_host(tmp_path: Path) -> None:
    job = write_job(tmp_path / "a", grid("r", "c", 5) + grid("s", "c", 2), job_id="j")
    first = [s.read_bytes() for s in write_webdataset(job.manifest, job.out, shard_size=3)]
    again = [s.read_bytes() for s in write_webdataset(job.manifest, job.out, shard_size=3)]
    copy = tmp_path / "b"
    shutil.copytree(job.out / "r", copy / "r")  # other mtimes, inode numbers, directory order
    shutil.copytree(job.out / "s", copy / "s")
    os.utime(next((copy / "r").rglob("*.jpg")), (1, 1))
    shards = write_webdataset(job.manifest, copy, dest=copy / "x/shard", shard_size=3)
    assert first == again == [s.read_bytes() for s in shards]
    exports = job.out / "_exports/j"
    assert sorted(p.name for p in exports.iterdir()) == [f"shard-{i:06d}.tar" for i in range(3)]


def test_stale_shards_of_a_longer_run_are_removed(tmp_path: Path) -> None:
    job = write_job(tmp_path / "out", grid("r", "c", 5))
    prefix = tmp_path / "d/shard"
    assert len(write_webdataset(job.manifest, job.out, dest=prefix, shard_size=1)) == 5
    for keep in ("shard-abc.tar", "shards-000009.tar", "other-000009.tar", "shard-000009.tar.bak"):
        (prefix.parent / keep).write_bytes(b"")
    (prefix.parent / "shard-1000000.tar").write_bytes(b"")  # seven digits: also a shard
    assert write_webdataset(job.manifest, job.out, dest=prefix, shard_size=2) == [
        shard_path(prefix, i) for i in range(3)
    ]
    assert sorted(p.name for p in prefix.parent.iterdir()) == [
        "other-000009.tar",
        "shard-000000.tar",
        "shard-000001.tar",
        "shard-000002.tar",
        "shard-000009.tar.bak",
        "shard-abc.tar",
        "shards-000009.tar",
    ]
    write_job(tmp_path / "out", [])  # the job now has no images: no shards at all
    assert write_webdataset(job.manifest, job.out, dest=prefix) == []
    assert not list(prefix.parent.glob("shard-0*.tar"))


HOSTILE = [
    "drive 1",
    "a/b",
    "a%2Fb",
    "..",
    ".hidden",
    "a.b.c",
    "x^,#y",
    "ü/日本",
    "tab\tnew\nline",
    "%",
    "",  # path_safe gives '%'
    "r" * 300,  # cut, plus a hash
]


def test_hostile_record_ids_and_contents(tmp_path: Path) -> None:
    images = [
        (r or "empty", c or "c", T0 + i)
        for i, (r, c) in enumerate(zip(HOSTILE, reversed(HOSTILE), strict=True))
    ]
    images += [(r, "camera/front.center", T0) for r in HOSTILE if r]
    job = write_job(tmp_path / "out", images)
    shards = write_webdataset(job.manifest, job.out, shard_size=4, sources=job.sources)
    check_equal(job, shards, sources=True)
    keys = [key for key, *_ in read_shards(shards)]
    assert len(set(keys)) == len(keys) == len(images)


def test_png_and_webp_members(tmp_path: Path) -> None:
    for image_format, ext in [("png", "png"), ("webp", "webp")]:
        job = write_job(tmp_path / image_format, grid("r", "c", 2), image_format=image_format)
        samples = read_shards(write_webdataset(job.manifest, job.out))
        assert [s[1] for s in samples] == [ext, ext]


def test_lines_without_an_image_are_rows_not_samples(tmp_path: Path) -> None:
    missing = {
        "record_id": "r",
        "content": "c",
        "requested_time": T0 + 9,
        "missing": "gap",
        "spec": "s",
    }
    job = write_job(tmp_path / "out", grid("r", "c", 2), missing=[missing])
    assert len(read_shards(write_webdataset(job.manifest, job.out))) == 2


def test_a_missing_image_fails_before_any_shard_is_written(tmp_path: Path) -> None:
    job = write_job(tmp_path / "out", grid("r", "c", 5))
    gone = job.out / job.lines[4]["path"]
    gone.unlink()
    with pytest.raises(OutputError, match=rf"image '{gone}' \(job manifest line 5\) is missing"):
        write_webdataset(job.manifest, job.out, shard_size=1)
    assert not (job.out / "_exports").exists()
    gone.mkdir()
    with pytest.raises(OutputError, match="is missing \\(not a regular file\\)"):
        write_webdataset(job.manifest, job.out)


def test_not_an_image_and_duplicates(tmp_path: Path) -> None:
    job = write_job(tmp_path / "out", grid("r", "c", 2))
    path = job.out / job.lines[0]["path"]
    size = path.stat().st_size
    path.write_bytes(b"GIF89a" + b"\0" * (size - 6))
    with pytest.raises(
        OutputError, match=r"is not a JPEG, PNG or WebP image \(it starts with b'GIF89a"
    ):
        write_webdataset(job.manifest, job.out)
    assert not list((job.out / "_exports").rglob("*.tmp"))  # the half shard is gone
    job = write_job(tmp_path / "dup", grid("r", "c", 2))
    job.manifest.write_text(job.manifest.read_text() * 2)
    with pytest.raises(OutputError, match=r"lists image '.*' twice \(lines 1 and 3\)"):
        write_webdataset(job.manifest, job.out)


def decode_key(key: str) -> str:
    """The inverse of `sample_key` (for a path without an image extension)."""
    out, i = [], 0
    while i < len(key):
        ch = key[i]
        if ch == "^":
            out.append(key[i + 1])
            i += 2
            continue
        out.append({",": ".", "#": "/"}.get(ch, ch))
        i += 1
    return "".join(out)


@given(st.text(st.sampled_from("ab./^,#%-_ü"), min_size=1, max_size=12))
def test_keys_are_reversible_so_never_shared(path: str) -> None:
    key = sample_key(path + ".jpg")
    assert "." not in key and "/" not in key
    assert decode_key(key) == path
