"""clipfind's package data: the app's icons (icons/*.svg) and clipfind's own open_clip model
configs (model_configs/*.json). Installed as the package `clipfind.assets` (pyproject.toml maps it
to this folder); read with importlib.resources.files("clipfind.assets")."""
