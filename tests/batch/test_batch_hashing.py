"""Content hashes: bytes and settings count, names and timestamps do not; cards include their weights."""

from __future__ import annotations

import json
import os

from voxcause.batch.hashing import case_hash, model_digest


def test_hash_follows_bytes_and_settings_not_names(tmp_path):
    image, copy, model = tmp_path / "a.nii.gz", tmp_path / "b.nii.gz", tmp_path / "m.ts"
    image.write_bytes(b"voxels")
    copy.write_bytes(b"voxels")
    model.write_bytes(b"weights")
    settings = {"method": "rex", "seed": 0}
    first = case_hash(image=[str(image)], model=str(model), mask=None, settings=settings)
    assert case_hash(image=[str(copy)], model=str(model), mask=None, settings=settings) == first
    os.utime(image, (1, 1))
    swapped = dict(reversed(settings.items()))
    assert case_hash(image=[str(image)], model=str(model), mask=None, settings=swapped) == first
    assert case_hash(image=[str(image)], model=str(model), mask=None, settings={**settings, "seed": 1}) != first
    assert case_hash(image=[str(image)], model=str(model), mask=str(copy), settings=settings) != first
    assert case_hash(image=[str(image), str(copy)], model=str(model), mask=None, settings=settings) != first
    model.write_bytes(b"weightz")
    assert case_hash(image=[str(image)], model=str(model), mask=None, settings=settings) != first


def test_card_digest_includes_the_files_it_names(tmp_path):
    (tmp_path / "weights.pt").write_bytes(b"v1")
    card = tmp_path / "card.json"
    card.write_text(json.dumps({"task": "classification", "weights": "weights.pt", "labels": ["a", "."]}))
    before = model_digest(card)
    (tmp_path / "unrelated.txt").write_text("not named by the card")
    assert model_digest(card) == before
    (tmp_path / "weights.pt").write_bytes(b"v2")
    assert model_digest(card) != before


def test_bundle_folder_digest(tmp_path):
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "inference.json").write_text("{}")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "model.pt").write_bytes(b"w1")
    before = model_digest(tmp_path)
    (tmp_path / "models" / "model.pt").write_bytes(b"w2")
    assert model_digest(tmp_path) != before
