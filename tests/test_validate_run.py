"""The run config against its data before step 1 (jreid.validate_run): each mismatch is one clear error."""

import pytest

from configs import image_reid, unireid
from data_pipelines.records import Record
from jreid.methods.image_reid import ImageReID
from jreid.methods.itkm.method import ITKM
from jreid.methods.unireid import UNIReID
from jreid.validate_run import validate_run


def _train(ids=3, modalities=("rgb",), captions=False):
  return [Record(f"{pid}_{m}.jpg", pid, 0, modality=m, captions=("a man in red",) if captions else ())
          for pid in range(ids) for m in modalities]


def _config(module=image_reid, **data):
  config = module.get_config("smoke")
  config.data.update(num_ids=2, **data)
  return config


def test_a_matching_config_gives_its_training_records(capsys):
  train = _train(modalities=("rgb", "ir", "template"))
  records = validate_run(_config(train_modalities=("rgb", "ir")), "x", train, ImageReID)
  assert records == [r for r in train if r.modality != "template"]
  assert capsys.readouterr().out == ""


def test_modalities_the_data_lacks_are_named_and_none_at_all_fails(capsys):
  records = validate_run(_config(), "market1501", _train(), ImageReID)
  assert {r.modality for r in records} == {"rgb"}
  assert capsys.readouterr().out == "data: market1501 has no ir, sketch training images; training on rgb\n"
  with pytest.raises(ValueError, match=r"train_modalities is \('ir',\), but market1501's training images are 3 rgb"):
    validate_run(_config(train_modalities=("ir",)), "market1501", _train(), ImageReID)


def test_a_balanced_modality_the_data_lacks_fails():
  with pytest.raises(ValueError, match="balance_modalities names 'ir', but market1501 has no such training images"):
    validate_run(_config(balance_modalities=("rgb", "ir")), "market1501", _train(), ImageReID)


def test_more_identities_per_batch_than_the_data_has_fails_unless_labels_are_pseudo():
  config = _config()
  config.data.num_ids = 4
  with pytest.raises(ValueError, match="num_ids=4 identities per batch, but market1501 has only 3 training"):
    validate_run(config, "market1501", _train(), ImageReID)
  assert len(validate_run(config, "market1501", _train(), ITKM)) == 3


def test_a_method_that_trains_on_captions_fails_on_data_without_them():
  config = _config(unireid, train_modalities=("rgb",))
  with pytest.raises(ValueError, match="config.method='unireid' trains on captions, but no training image of "
                                       "market1501 has one"):
    validate_run(config, "market1501", _train(), UNIReID)
  assert len(validate_run(config, "cuhk_pedes", _train(captions=True), UNIReID)) == 3
