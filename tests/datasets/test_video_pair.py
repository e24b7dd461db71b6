"""VideoPairDataset: layouts, pair content, identity grouping, robustness, workers, real clips."""

import pickle

import decord
import numpy as np
import pytest
import torch

import lmtk.datasets.video_reader as video_reader
from lmtk.datasets import NoReadableVideoError, VideoPairDataset, video_identity
from lmtk.registry import get


def _check_item(item, pattern, size):
    assert set(item) == {"source", "driving", "video", "frame_indices"}
    for key in ("source", "driving"):
        tensor = item[key]
        assert tensor.shape == (3, *size) and tensor.dtype == torch.float32
        assert tensor.min() >= -1.0 and tensor.max() <= 1.0
    source_index, driving_index = item["frame_indices"]
    assert isinstance(source_index, int) and isinstance(driving_index, int)
    assert source_index != driving_index
    # The decoded content is the frames the item says it is.
    assert pattern.decode_index(pattern.tensor_to_frame(item["source"])) == source_index
    assert pattern.decode_index(pattern.tensor_to_frame(item["driving"])) == driving_index


def test_flat_folder_items(video_dir, pattern):
    dataset = VideoPairDataset(video_dir, split="train", size=None)  # no train/: the folder itself
    assert dataset.root == video_dir
    assert dataset.names == ["id001#a#001.mp4", "id001#b#002.mp4", "id002#a#001.mp4", "id003#c#001"]
    assert len(dataset) == 4 and dataset.skipped == []
    np.random.seed(0)
    for index in range(len(dataset)):
        item = dataset[index]
        assert item["video"] == dataset.names[index]
        _check_item(item, pattern, (pattern.height, pattern.width))
    for _ in range(10):  # the 12-frame clip never yields an index past its end
        assert max(dataset[1]["frame_indices"]) < 12


def test_resize_to_model_size(video_dir, pattern):
    dataset = VideoPairDataset(video_dir, size=32)
    np.random.seed(1)
    for index in (0, 3):
        _check_item(dataset[index], pattern, (32, 32))
    assert VideoPairDataset(video_dir, size=(16, 24))[0]["source"].shape == (3, 16, 24)


def test_vox_png_layout_splits(vox_png_dir, pattern):
    train = VideoPairDataset(vox_png_dir, split="train", size=32)
    assert train.root == vox_png_dir / "train"
    assert train.names == ["id100#x#001", "id100#y#002", "id200#z#001.mp4"]
    test = VideoPairDataset(vox_png_dir, split="test", size=32)
    assert test.names == ["id300#w#001"]
    np.random.seed(2)
    for dataset in (train, test):
        for index in range(len(dataset)):
            _check_item(dataset[index], pattern, (32, 32))
    # Without a split the root holds only the split folders, which are not videos.
    with pytest.raises(ValueError, match="No videos found"):
        VideoPairDataset(vox_png_dir, split=None)


def test_identity_grouping_and_repeats(video_dir):
    assert video_identity("id10001#abc#001.mp4") == "id10001"
    grouped = VideoPairDataset(video_dir, size=32, group_by_identity=True)
    assert grouped.identities == ["id001", "id002", "id003"]
    assert len(grouped) == grouped.num_items == 3
    np.random.seed(3)
    seen = {grouped[0]["video"] for _ in range(12)}
    assert seen == {"id001#a#001.mp4", "id001#b#002.mp4"}
    assert grouped[2]["video"] == "id003#c#001"

    repeated = VideoPairDataset(video_dir, size=32, repeats=3, group_by_identity=True)
    assert len(repeated) == 9
    assert repeated[7]["video"] == grouped[1]["video"] == "id002#a#001.mp4"
    with pytest.raises(IndexError):
        repeated[9]
    assert len(VideoPairDataset(video_dir, size=32, repeats=2)) == 8


def test_pipeline_flip_applies_to_both_frames(video_dir, pattern):
    for pipeline in ([dict(type="PairedRandomFlip", prob=1.0)], dict(type="PairedRandomFlip", prob=1.0)):
        dataset = VideoPairDataset(video_dir, size=None, pipeline=pipeline)
        item = dataset[0]
        for key in ("source", "driving"):
            assert not pattern.band_on_left(pattern.tensor_to_frame(item[key]))
    plain = VideoPairDataset(video_dir, size=None)[0]
    assert pattern.band_on_left(pattern.tensor_to_frame(plain["source"]))


def test_pipeline_colour_jitter_keeps_pair_consistent(video_dir, pattern):
    pipeline = [dict(type="PairedColorJitter", brightness=(1.2, 1.2))]
    item = VideoPairDataset(video_dir, size=None, pipeline=pipeline)[0]
    for key, index in zip(("source", "driving"), item["frame_indices"]):
        grey = np.median(pattern.tensor_to_frame(item[key])[:, 28:36])
        assert grey == pytest.approx(min(255, (8 + 9 * index) * 1.2), abs=3)


def test_empty_root_error_names_folder_and_extensions(tmp_path):
    (tmp_path / "face.png").write_bytes(b"")
    with pytest.raises(ValueError, match="No videos found") as error:
        VideoPairDataset(tmp_path)
    assert str(tmp_path) in str(error.value) and ".mp4" in str(error.value) and ".png" in str(error.value)
    with pytest.raises(FileNotFoundError):
        VideoPairDataset(tmp_path / "missing")
    # a prepared dataset whose one video went to test/: the error says where the videos are
    (tmp_path / "test").mkdir()
    with pytest.raises(
        ValueError, match=r"it has no train/ folder but test/ \(.*--split 1.0 puts all in train/"
    ):
        VideoPairDataset(tmp_path, split="train")


def test_bad_videos_skipped_at_construction(tmp_path, make_video, make_frame_folder, pattern):
    (tmp_path / "bad.mp4").write_bytes(np.random.default_rng(0).bytes(4096))
    make_video(tmp_path / "one.mp4", num_frames=1)
    make_frame_folder(tmp_path / "single", num_frames=1)
    make_video(tmp_path / "zgood.mp4", num_frames=6)
    dataset = VideoPairDataset(tmp_path, size=32)
    assert dataset.names == ["zgood.mp4"]
    skipped = {name.rsplit("/", 1)[-1]: reason for name, reason in dataset.skipped}
    assert set(skipped) == {"bad.mp4", "one.mp4", "single"}
    assert "unreadable" in skipped["bad.mp4"] and "1 frame" in skipped["one.mp4"]
    _check_item(dataset[0], pattern, (32, 32))

    (tmp_path / "zgood.mp4").unlink()
    with pytest.raises(ValueError, match="No usable videos"):
        VideoPairDataset(tmp_path)


def test_read_failure_falls_back_to_next_video(tmp_path, make_video, pattern):
    (tmp_path / "a_bad.mp4").write_bytes(np.random.default_rng(1).bytes(4096))
    make_video(tmp_path / "b_good.mp4", num_frames=8)
    make_video(tmp_path / "c_good.mp4", num_frames=8)
    dataset = VideoPairDataset(tmp_path, size=32, scan=False)
    assert len(dataset) == 3 and dataset.skipped == []
    item = dataset[0]
    assert item["video"] == "b_good.mp4"
    _check_item(item, pattern, (32, 32))
    assert [path.rsplit("/", 1)[-1] for path, _ in dataset.skipped] == ["a_bad.mp4"]
    assert dataset[0]["video"] == "b_good.mp4" and len(dataset.skipped) == 1  # remembered as bad

    # A video that disappears after the scan is skipped the same way.
    scanned = VideoPairDataset(tmp_path, size=32)
    (tmp_path / "c_good.mp4").unlink()
    assert scanned[1]["video"] == "b_good.mp4"
    assert scanned.skipped[-1][0].endswith("c_good.mp4")

    # When every video fails, the error names the last and its reason (a worker's log is not at hand).
    last = VideoPairDataset(tmp_path, size=32)
    (tmp_path / "b_good.mp4").unlink()
    with pytest.raises(
        NoReadableVideoError, match=r"Every video in .* failed to read .*b_good\.mp4: read failed"
    ):
        last[0]


def test_reads_only_the_two_frames(video_dir, monkeypatch):
    decoded = []
    get_batch, read_image = decord.VideoReader.get_batch, video_reader._read_image

    def counting_get_batch(self, indices):
        decoded.extend(indices)
        return get_batch(self, indices)

    def counting_getitem(self, index):
        raise AssertionError("the dataset must decode through get_batch only")

    def counting_read_image(path):
        decoded.append(path)
        return read_image(path)

    monkeypatch.setattr(decord.VideoReader, "get_batch", counting_get_batch)
    monkeypatch.setattr(decord.VideoReader, "__getitem__", counting_getitem)
    monkeypatch.setattr(decord.VideoReader, "next", counting_getitem)
    monkeypatch.setattr(video_reader, "_read_image", counting_read_image)
    dataset = VideoPairDataset(video_dir, size=32)
    assert decoded == []  # the scan decodes nothing
    for index in range(len(dataset)):
        decoded.clear()
        dataset[index]
        assert len(decoded) == 2, dataset.names[index]


def test_frame_cache_decodes_each_video_once_and_gives_the_same_items(video_dir, pattern, monkeypatch):
    plain = VideoPairDataset(video_dir, size=32, repeats=3)
    cached = VideoPairDataset(video_dir, size=32, repeats=3, frame_cache_mb=1)
    np.random.seed(3)
    expected = [plain[i] for i in range(len(plain))]
    decoded = []
    get_batch = decord.VideoReader.get_batch
    monkeypatch.setattr(
        decord.VideoReader,
        "get_batch",
        lambda self, indices: decoded.append(len(indices)) or get_batch(self, indices),
    )
    np.random.seed(3)
    items = [cached[i] for i in range(len(cached))]
    for item, reference in zip(items, expected):
        assert item["frame_indices"] == reference["frame_indices"] and item["video"] == reference["video"]
        assert torch.equal(item["source"], reference["source"]) and torch.equal(
            item["driving"], reference["driving"]
        )
        _check_item(item, pattern, (32, 32))
    # three mp4 files: each decoded whole, once (plus one frame for its size), over three passes
    assert sorted(decoded) == [1, 1, 1, *sorted(len(cached._reader(v)) for v in range(3))]
    assert len(cached._decoded) == len(cached.videos)
    assert len(pickle.loads(pickle.dumps(cached))._decoded) == 0  # workers fill their own


def test_frame_cache_keeps_within_its_size(video_dir):
    largest = 24 * 48 * 64 * 3  # bytes of the longest test video (24 frames at its stored 48 x 64)
    dataset = VideoPairDataset(video_dir, size=32, frame_cache_mb=1.5 * largest / 2**20)
    for index in range(len(dataset)):
        dataset[index]
        assert dataset._decoded.nbytes <= dataset.frame_cache_bytes
    assert 1 <= len(dataset._decoded) < len(dataset.videos)
    too_small = VideoPairDataset(video_dir, size=32, frame_cache_mb=1e-3)
    too_small[0]
    assert len(too_small._decoded) == 0  # a video larger than the cache is read frame by frame
    with pytest.raises(ValueError, match="frame_cache_mb"):
        VideoPairDataset(video_dir, frame_cache_mb=-1)


def test_dataloader_workers_and_pickling(video_dir):
    dataset = VideoPairDataset(video_dir, size=32, pipeline=[dict(type="PairedRandomFlip")])
    dataset[0]  # open a reader in this process before forking
    restored = pickle.loads(pickle.dumps(dataset))
    assert restored.names == dataset.names and len(restored._readers) == 0

    def seed_worker(worker_id):
        np.random.seed(torch.initial_seed() % 2**32)

    loader = torch.utils.data.DataLoader(
        dataset, batch_size=2, num_workers=2, shuffle=True, worker_init_fn=seed_worker
    )
    batch = next(iter(loader))
    assert batch["source"].shape == batch["driving"].shape == (2, 3, 32, 32)
    assert len(batch["video"]) == 2 and set(batch["video"]) <= set(dataset.names)
    assert batch["frame_indices"][0].shape == (2,)


def test_registered_and_seedable(video_dir):
    assert get("lmtk.VideoPairDataset.v1", "datasets") is VideoPairDataset
    dataset = VideoPairDataset(video_dir, size=32)
    np.random.seed(11)
    first = [dataset[i]["frame_indices"] for i in range(4)]
    np.random.seed(11)
    assert [dataset[i]["frame_indices"] for i in range(4)] == first


def test_real_vox_clips(shared_data):
    root = shared_data / "vox"
    if not (root / "driving1.mp4").is_file():
        pytest.skip(f"{root / 'driving1.mp4'} not found")
    dataset = VideoPairDataset(root, size=32)
    assert "driving1.mp4" in dataset.names
    assert all(not name.endswith(".png") for name in dataset.names)  # portraits are not videos
    for index in range(min(2, len(dataset))):
        item = dataset[index]
        assert item["source"].shape == item["driving"].shape == (3, 32, 32)
        assert -1.0 <= item["source"].min() and item["source"].max() <= 1.0
        assert item["source"].std() > 0.05  # real content, not a blank frame
