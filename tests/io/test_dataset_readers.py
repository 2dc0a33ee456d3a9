"""pix2point/datasets: every `source` maps to a module with the whole reader interface of io/dataset_reader.py,
and the stages accept exactly the mapped sources."""

import typing

import pydantic
import pytest

from stages import objects, scenes

from pix2point.datasets.objects import OBJECT_READERS
from pix2point.datasets.scenes import SCENE_READERS
from pix2point.io.dataset_reader import GeneratedObjects, ObjectFileReader, SceneReader, SplitFileReader


def interface(protocol: type) -> set[str]:
    """The names a module must define to follow `protocol`: its annotated constants and its methods."""
    names = set()
    for cls in protocol.__mro__:
        if cls is typing.Protocol or cls is typing.Generic or cls is object:
            continue
        names |= set(getattr(cls, "__annotations__", {}))
        names |= {name for name, value in vars(cls).items() if callable(value) and not name.startswith("_")}
    return names


@pytest.mark.parametrize("source", sorted(SCENE_READERS))
def test_every_scene_source_has_a_whole_scene_reader(source):
    missing = sorted(name for name in interface(SceneReader) if not hasattr(SCENE_READERS[source], name))
    assert not missing, f"{SCENE_READERS[source].__name__} lacks {missing}"


@pytest.mark.parametrize("source", sorted(OBJECT_READERS))
def test_every_object_source_has_a_whole_object_reader_of_its_layout(source):
    reader = OBJECT_READERS[source]
    protocol = {"file_per_object": ObjectFileReader, "file_per_split": SplitFileReader}[reader.LAYOUT]
    if reader.ROOT_FOLDER is None:
        protocol = GeneratedObjects
    missing = sorted(name for name in interface(protocol) if not hasattr(reader, name))
    assert not missing, f"{reader.__name__} lacks {missing}"


def test_the_stages_accept_exactly_the_mapped_sources():
    assert typing.get_args(scenes.Params.model_fields["source"].annotation) == tuple(SCENE_READERS)
    assert typing.get_args(objects.Params.model_fields["source"].annotation) == tuple(OBJECT_READERS)
    with pytest.raises(pydantic.ValidationError, match="'synthetic', 'scannet'"):
        scenes.Params(source="nyu")


@pytest.mark.parametrize("source", [source for source, reader in SCENE_READERS.items() if reader.ROOT_FOLDER])
def test_a_scene_source_without_root_names_the_folder_it_needs(source):
    with pytest.raises(pydantic.ValidationError, match="needs `root`"):
        scenes.Params(source=source)
