"""Model weights from the Hugging Face Hub into its local cache, with a progress callback.

Before open_clip runs, the weights file it will look for on the Hub is made sure to be in the
local cache (downloaded with a progress callback when missing); open_clip then runs with the Hub
switched to offline mode (hub_offline), so a machine that has the weights never touches the
network and one without them fails at once with a message that says what to do. Part of the
torch side: open_clip's own rules for file names come with importing it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import open_clip
from huggingface_hub import constants as hf_constants
from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url, try_to_load_from_cache
from huggingface_hub.errors import HfHubHTTPError, RemoteEntryNotFoundError, RepositoryNotFoundError
from open_clip.constants import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME
from open_clip.pretrained import _get_safe_alternatives  # its rule for which weights file to ask the Hub for
from tqdm import tqdm

from clipfind.embedding import table
from clipfind.embedding.spec import HF_HUB_PREFIX, ModelSpec
from clipfind.errors import ModelLoadError, one_line

TOKENIZER_FILE = "tokenizer.json"  # a Hugging Face tokenizer as one file, read by `tokenizers` (Rust, no torch)

DownloadProgressFn = Callable[[int, int | None], None]
"""(bytes_done, bytes_total or None) of the file being downloaded (the weights; for a model with a
Hugging Face text tower, its tokenizer first, then the weights): what
clipfind.library.Library takes as `download_progress`. (clipfind.indexer.ProgressFn is another
thing: indexing progress.)"""


@dataclass(frozen=True, slots=True)
class HubFile:
    """A file open_clip will ask the Hub for: the first of `candidates` that the repo has."""

    repo: str
    candidates: tuple[str, ...]


def hub_weights(spec: ModelSpec) -> HubFile | None:
    """The weights file open_clip looks up for this spec, resolved the way its download_pretrained does."""
    if spec.is_hub_repo:
        return HubFile(spec.name.removeprefix(HF_HUB_PREFIX), (HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME))
    if spec.pretrained is None or spec.is_file:
        return None
    repo, filename = os.path.split(open_clip.get_pretrained_cfg(spec.name, spec.pretrained)["hf_hub"])
    filename = filename or HF_WEIGHTS_NAME
    # open_clip tries the .safetensors twin of a weights file first, then the file itself.
    return HubFile(repo, (*_get_safe_alternatives(filename), filename))


def hub_text_files(text_cfg: dict[str, Any]) -> list[HubFile]:
    """What open_clip's Hugging Face text tower and tokenizer read from the Hub besides the weights
    (xlm-roberta-base-ViT-B-32: xlm-roberta-base's config.json and tokenizer.json). transformers
    builds the tower from the text model's config (the CLIP weights then replace its own) and
    AutoTokenizer reads the tokenizer repo's config and tokenizer.json; the tokenizer's other files
    are optional. A local folder (a test model) needs nothing from the Hub."""
    files: list[HubFile] = []
    model, tokenizer = text_cfg.get("hf_model_name"), text_cfg.get("hf_tokenizer_name")
    if model and not os.path.isdir(model):
        files.append(HubFile(model, (hf_constants.CONFIG_NAME,)))
    if tokenizer and not os.path.isdir(tokenizer):
        if tokenizer != model:
            files.append(HubFile(tokenizer, (hf_constants.CONFIG_NAME,)))
        files.append(HubFile(tokenizer, (TOKENIZER_FILE,)))
    return files


def _progress_bar(progress: DownloadProgressFn) -> type[tqdm]:
    """A tqdm class for hf_hub_download(tqdm_class=...) that prints nothing and reports bytes to `progress`."""

    class _CallbackBar(tqdm):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = True  # the caller draws its own bar
            super().__init__(*args, **kwargs)
            progress(int(self.n), self.total)

        def update(self, n: float | None = 1) -> bool | None:
            self.n += n or 0
            progress(int(self.n), self.total)
            return None

        def update_transfer(self, n: int) -> None:
            """Network bytes of a Xet download: defining this makes huggingface_hub report through
            one bar (bytes written, against the file size) instead of two."""

        def set_transfer_postfix_str(self, s: str = "", refresh: bool = True) -> None:
            """Rate text of that Xet transfer bar; nothing to show."""

    return _CallbackBar


def quiet(done: int, total: int | None) -> None:
    """Progress sink for the small config file: only the weights deserve a bar."""


def what(spec: ModelSpec, hub: HubFile | None = None) -> str:
    """What is being downloaded, for messages: the weights, or (`hub` given) a text-side file."""
    if hub is not None:
        return f"{spec.name}'s text model files ({hub.repo})"
    return spec.name if spec.is_hub_repo else f"the weights for {spec.name} ({spec.pretrained})"


def _offline_message(spec: ModelSpec, reason: str, text_file: HubFile | None = None) -> str:
    row = table.lookup(spec.name, spec.pretrained)
    size = f" (about {row.download_text})" if row else ""
    if text_file is not None:  # a checkpoint file would not help: the tokenizer comes from the Hub
        return (f"Could not download {what(spec, text_file)}: {reason}. "
                f"Connect once to download them with the model{size}.")
    if spec.is_hub_repo:
        return f"Could not download {spec.name}: {reason}. Connect once to download it{size}."
    return (
        f"Could not download {what(spec)}: {reason}. Connect once to download them{size}, "
        "or pass a checkpoint file with --pretrained /path/to/open_clip_model.safetensors."
    )


def fetch(spec: ModelSpec, hub: HubFile, progress: DownloadProgressFn | None, *, text_file: bool = False) -> str:
    """Path of `hub` in the local Hugging Face cache, downloading it first if it is not there.

    A plain hf_hub_download retries for ~20 s per file when there is no network; one quick HEAD
    request tells us instead, and its answer says which candidate the repo has. `text_file`: `hub`
    is one of hub_text_files(), not the weights (the messages say so).
    """
    about = what(spec, hub if text_file else None)
    text_hub = hub if text_file else None
    for filename in hub.candidates:
        cached = try_to_load_from_cache(hub.repo, filename)
        if isinstance(cached, str):
            return cached
    if hf_constants.HF_HUB_OFFLINE:
        raise ModelLoadError(_offline_message(spec, "offline mode is on (HF_HUB_OFFLINE is set)", text_hub))
    for filename in hub.candidates:
        try:
            get_hf_file_metadata(hf_hub_url(hub.repo, filename), timeout=hf_constants.HF_HUB_ETAG_TIMEOUT)
        except RemoteEntryNotFoundError:
            continue
        except RepositoryNotFoundError as e:  # also gated/private repositories
            raise ModelLoadError(
                f"Hugging Face repository {hub.repo} was not found (or it is private or gated); check the name."
            ) from e
        except HfHubHTTPError as e:
            raise ModelLoadError(
                f"Could not download {about}: the Hugging Face Hub answered {e.response.status_code}. "
                "Try again later."
            ) from e
        except Exception as e:  # no answer at all: name resolution, refused connection, timeout
            raise ModelLoadError(_offline_message(spec, "no internet connection", text_hub)) from e
        try:
            return hf_hub_download(hub.repo, filename, tqdm_class=_progress_bar(progress) if progress else None)
        except Exception as e:
            raise ModelLoadError(
                f"Downloading {about} failed: {one_line(e)}. Run the command again to resume."
            ) from e
    raise ModelLoadError(f"Hugging Face repository {hub.repo} has no {' or '.join(hub.candidates)}.")


@contextmanager
def hub_offline() -> Iterator[None]:
    """Keep open_clip off the network while it loads: everything it needs is cached by now, and its
    own lookups would cost a round-trip per file (or ~20 s of retries per file without network)."""
    saved = hf_constants.HF_HUB_OFFLINE
    hf_constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        hf_constants.HF_HUB_OFFLINE = saved
