"""The ``distill`` command line: a thin shell over ``curation``, ``train`` and ``studio``."""
