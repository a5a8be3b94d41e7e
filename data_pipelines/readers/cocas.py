"""COCAS+, the two subsets whose layout its release documents.

COCAS-Real2 (evaluation): query.txt lists 'image template pid clothes camera',
gallery.txt 'image pid clothes camera'. Each query comes with a template image
of the clothes its target wears; the clothes a query row names are taken to
be the template's, i.e. the target's (`target_clothes_id`; the query photo's
own clothes are not listed). Task 'ctcc': protocol 'target_clothes', query
kind 'image+template'. COCAS-Synthetic (training): cocas_v2_syn_train.txt
lists 'image template pid clothes'. Paths are relative to the subset folder;
camera and clothes labels are mapped to 0-based indices, clothes unique per
(pid, clothes).
"""

from __future__ import annotations

from data_pipelines.readers import common
from data_pipelines.records import Record, ReIDData

REAL2_LAYOUT = """\
  COCAS-Real2/                    (the root)
    images/...  templates/...
    query.txt    lines '<image> <template> <pid> <clothes> <camera>'
    gallery.txt  lines '<image> <pid> <clothes> <camera>'"""

SYNTHETIC_LAYOUT = """\
  COCAS-Synthetic/                (the root)
    GTA_v2/...  GTA_v2_2/...
    cocas_v2_syn_train.txt  lines '<image> <template> <pid> <clothes>'"""


def read_cocas_real2(root: str) -> ReIDData:
  """Reads COCAS-Real2: no training split, one 'ctcc' evaluation task."""
  base = common.find_root("COCAS+ Real2", root, ("query.txt", "gallery.txt"),
                          REAL2_LAYOUT)
  query_rows = [(image, template, int(pid), int(clothes), int(camera))
                for image, template, pid, clothes, camera
                in common.read_rows(base / "query.txt", 5)]
  gallery_rows = [(image, "", int(pid), int(clothes), int(camera))
                  for image, pid, clothes, camera
                  in common.read_rows(base / "gallery.txt", 4)]
  rows = query_rows + gallery_rows
  clothes_index = common.dense_index((r[2], r[3]) for r in rows)
  camera_index = common.dense_index(r[4] for r in rows)
  query = [Record(str(base / image), pid=pid, camid=camera_index[camera],
                  template=str(base / template),
                  target_clothes_id=clothes_index[pid, clothes], orig_pid=pid)
           for image, template, pid, clothes, camera in query_rows]
  gallery = [Record(str(base / image), pid=pid, camid=camera_index[camera],
                    clothes_id=clothes_index[pid, clothes], orig_pid=pid)
             for image, _, pid, clothes, camera in gallery_rows]
  return ReIDData(
      name="cocas_real2", train=(),
      tasks={"ctcc": common.make_task("cocas_real2", "ctcc", "target_clothes",
                                      query, gallery,
                                      query_kind="image+template")})


def read_cocas_synthetic(root: str) -> ReIDData:
  """Reads COCAS-Synthetic: training records with templates, no tasks."""
  base = common.find_root("COCAS+ Synthetic", root,
                          ("cocas_v2_syn_train.txt",), SYNTHETIC_LAYOUT)
  rows = [(image, template, int(pid), int(clothes))
          for image, template, pid, clothes
          in common.read_rows(base / "cocas_v2_syn_train.txt", 4)]
  clothes_index = common.dense_index((pid, c) for _, _, pid, c in rows)
  train = [Record(str(base / image), pid=pid, camid=0,
                  clothes_id=clothes_index[pid, clothes],
                  template=str(base / template), orig_pid=pid)
           for image, template, pid, clothes in rows]
  return ReIDData(name="cocas_synthetic", train=common.relabel(train),
                  tasks={})
