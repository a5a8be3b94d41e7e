"""Protocol rules on hand-made cases; record encoding and SYSU trials."""

import numpy as np
import pytest

import eval_reference as ref
from data_pipelines.records import Record
from jreid.eval import protocols


def _masks(query, gallery, protocol):
  labels = protocols.encode_protocol(query, gallery, protocol)
  valid, positive = protocols.pair_masks(*labels, protocol)
  return np.asarray(valid)[0].tolist(), np.asarray(positive)[0].tolist()


def test_eval_standard_removes_same_id_same_camera():
  gallery = [Record("a", 1, 0), Record("b", 1, 1), Record("c", 2, 0),
             Record("d", -1, 1)]
  for protocol in ("standard", "general", "cross_resolution"):
    valid, positive = _masks([Record("q", 1, 0)], gallery, protocol)
    assert valid == [False, True, True, True]
    assert positive == [False, True, False, False]


def test_eval_unknown_query_identity_matches_nothing():
  _, positive = _masks([Record("q", -1, 0)], [Record("a", -1, 1)], "standard")
  assert positive == [False]


def test_eval_cc_also_removes_same_clothes():
  gallery = [Record("a", 1, 1, clothes_id=5), Record("b", 1, 1, clothes_id=6),
             Record("c", 2, 1, clothes_id=5)]
  query = [Record("q", 1, 0, clothes_id=5)]
  assert _masks(query, gallery, "cc") == ([False, True, True],
                                          [False, True, False])
  assert _masks(query, gallery, "general")[0] == [True, True, True]


def test_eval_sysu_cameras_and_modalities():
  gallery = [Record(str(c), 1, c, modality="ir" if c in (2, 5) else "rgb")
             for c in range(6)]
  query = [Record("q", 1, 2, modality="ir")]  # camera 3
  assert _masks(query, gallery, "sysu_all")[0] == [True, False, False, True,
                                                   True, False]
  assert _masks(query, gallery, "sysu_indoor")[0] == [True, False, False,
                                                      False, False, False]
  query = [Record("q", 1, 5, modality="ir")]  # camera 6
  assert _masks(query, gallery, "sysu_indoor")[0] == [True, True, False,
                                                      False, False, False]


def test_eval_cross_modality_keeps_the_other_modality():
  gallery = [Record("a", 1, 0, modality="rgb"), Record("b", 1, 0,
                                                       modality="ir")]
  assert _masks([Record("q", 1, 0)], gallery, "v2i")[0] == [False, True]
  assert _masks([Record("q", 1, 0, modality="ir")], gallery,
                "i2v") == ([True, False], [True, False])


def test_eval_sketch_source_photo_removed_without_camera_rule():
  gallery = [Record("a", 1, 0), Record("b", 1, 0), Record("c", 2, 0)]
  query = [Record("s", 1, 0, modality="sketch", source="b")]
  for protocol in ("sketch", "text+sketch", "text"):
    assert _masks(query, gallery, protocol) == ([True, False, True],
                                                [True, False, False])


def test_eval_target_clothes_matches_only_the_asked_clothes():
  gallery = [Record("a", 1, 0, clothes_id=3), Record("b", 1, 1, clothes_id=4),
             Record("c", 2, 1, clothes_id=3)]
  query = [Record("q", 1, 0, clothes_id=4, target_clothes_id=3)]
  assert _masks(query, gallery, "target_clothes") == ([True, True, True],
                                                      [True, False, False])


@pytest.mark.parametrize("protocol,query,gallery,message", [
    ("nope", [Record("q", 1, 0)], [Record("a", 1, 0)], "Unknown protocol"),
    ("cc", [Record("q", 1, 0)], [Record("a", 1, 0)], "clothes_id"),
    ("target_clothes", [Record("q", 1, 0)], [Record("a", 1, 0, clothes_id=1)],
     "target_clothes_id"),
    ("v2i", [Record("q", 1, 0, modality="ir")], [Record("a", 1, 0)], "'rgb'"),
    ("sysu_all", [Record("q", 1, 2)], [Record("a", 1, 0)], "'ir'"),
    ("standard", [Record("q", 1, 0, modality="x")], [Record("a", 1, 0)],
     "modality"),
    ("standard", [], [Record("a", 1, 0)], "at least one"),
])
def test_eval_encode_rejects_bad_input(protocol, query, gallery, message):
  with pytest.raises(ValueError, match=message):
    protocols.encode_protocol(query, gallery, protocol)


def test_eval_sysu_trials_draw_one_item_per_group_like_reference():
  rng = np.random.default_rng(0)
  _, gallery = ref.random_case(rng, "sysu_all", num_gallery=200)
  labels = protocols.encode_records(gallery)
  trials = protocols.gallery_trials("sysu_all", labels, 4, seed=3)
  assert [t.tolist() for t in trials] == ref.sysu_trials(gallery, "sysu_all",
                                                         4, seed=3)
  assert len({tuple(t) for t in trials}) == 4
  for subset in trials:
    keys = [(gallery[j].pid, gallery[j].camid) for j in subset]
    assert len(set(keys)) == len(keys)
    assert {gallery[j].camid for j in subset} <= {0, 1, 3, 4}


def test_eval_single_shot_gallery_is_one_trial():
  gallery = [Record(str(c), 1, c) for c in (0, 1, 3)]
  trials = protocols.gallery_trials("sysu_all",
                                    protocols.encode_records(gallery), 10, 0)
  assert [t.tolist() for t in trials] == [[0, 1, 2]]
  assert protocols.gallery_trials("standard", protocols.encode_records(
      gallery), 10, 0) == [None]
