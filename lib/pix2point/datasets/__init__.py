"""Which reader reads the dataset a `source` param names: datasets/scenes.py for the scenes stage,
datasets/objects.py for the objects stage, one plain dict each (two modules, so that a new object dataset
does not change the scenes stage's code fingerprint, nor the reverse).

Each value is a reader module implementing io/dataset_reader.py's interface. A new dataset is one reader
module and one entry in one of the dicts (docs/design.md, "Add a dataset reader").
"""
