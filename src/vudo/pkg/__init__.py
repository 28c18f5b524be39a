"""The package manager: manifests, versions, resolution, keys, signing, ``.spirit``
packages, the local store and registries.

Only constants live here, so that code on the run path can name them without importing
the manifest parser.
"""

#: The files a project's manifest may be, in the order they are looked for.
MANIFEST_FILENAMES: tuple[str, ...] = ("spirit.toml", "manifest.toml", "manifest.json")
