"""Load an open_clip model and turn photos and queries into unit vectors (the torch side).

Weights come through open_clip's own loading path, after clipfind.embedding.download has made
sure they are in the local Hugging Face cache; open_clip then runs with the Hub offline.

A model whose text tower is a Hugging Face model (xlm-roberta-base-ViT-B-32) needs `transformers`,
the `multilingual` extra: open_clip builds that tower and its tokenizer with it. Checked before
anything is downloaded, with a one-line error that says how to install it. Its tokenizer's files
(config.json, tokenizer.json) are fetched with the weights, so open_clip finds them offline. Once
the text tower is exported to ONNX, the query side runs with clipfind.embedding.hf_tokenizer
instead, without torch or transformers.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import open_clip
import PIL.Image
import torch
from open_clip.constants import HF_CONFIG_NAME

from clipfind.embedding import calibrate
from clipfind.embedding.download import (
    TOKENIZER_FILE,
    DownloadProgressFn,
    HubFile,
    fetch,
    hub_offline,
    hub_text_files,
    hub_weights,
    quiet,
    what,
)
from clipfind.embedding.hf_tokenizer import HfTokenizer, missing_extra
from clipfind.embedding.onnx import OnnxTextEncoder, save_export_info
from clipfind.embedding.preprocess import FastPreprocess, fast_preprocess
from clipfind.embedding.runtime import (
    Choice,
    batch_size_for,
    cpu_threads,
    load_choice,
    machine_key,
    onnx_path,
    save_choice,
)
from clipfind.embedding.spec import (
    ONNX_MODES,
    PRECISIONS,
    TINY_MODEL,
    ModelSpec,
    check_precision,
    model_configs,
    unknown_model,
    warn_if_random,
)
from clipfind.embedding.tokenizer import BpeTokenizer, warn_cut
from clipfind.errors import ModelLoadError, one_line
from clipfind.home import atomic_write
from clipfind.records import Vectors

# Queries an exported text tower must encode like torch does (long, odd, plain and non-English ones:
# the multilingual model's tokenizer is checked through them too).
FIDELITY_QUERIES = ("dog on a beach at sunset", "a photo of my grandmother's 80th birthday party, with cake and "
                    "candles, in the garden", "東京の夜景", "собака на пляже", "Crème brûlée à Noël", "IMG_2041",
                    "🐶", "")



def register_tiny_model() -> None:
    """Make "clipfind-tiny" (a few-MB architecture for tests and benchmarks) known to open_clip."""
    if TINY_MODEL in open_clip.list_models():
        return
    config = model_configs() / f"{TINY_MODEL}.json"
    if not config.is_file():
        raise ModelLoadError(f"The {TINY_MODEL} config is missing from this installation ({config}).")
    open_clip.add_model_config(Path(str(config)))  # package data in a folder (not a zip): a real path


def pick_device(requested: str | None = None) -> torch.device:
    """The fastest device present, or the one asked for if it exists here."""
    if requested:
        try:
            device = torch.device(requested)
        except RuntimeError as e:
            raise ModelLoadError(f"Unknown device '{requested}'; use cpu, cuda or mps.") from e
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ModelLoadError(f"--device {requested} was asked for, but CUDA is not available here; use cpu.")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise ModelLoadError(f"--device {requested} was asked for, but MPS is not available here; use cpu.")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def configure_cpu_threads() -> int:
    """Use one torch thread per physical core we may run on (OMP_NUM_THREADS wins if set)."""
    threads = cpu_threads()
    torch.set_num_threads(threads)
    try:
        # Eager inference does not use inter-op parallelism; one thread avoids idle extras.
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass  # torch allows this only once and only before parallel work has started
    return threads


class ClipModel:
    """A loaded model with its own preprocessing and tokenizer; outputs are unit float32 rows."""

    def __init__(
        self,
        spec: ModelSpec,
        device: torch.device,
        model: Any,  # an open_clip CLIP/CustomTextCLIP: its attributes are untyped
        transform: Callable[[PIL.Image.Image], torch.Tensor],
        tokenizer: Callable[[list[str]], torch.Tensor],
        dim: int,
        *,
        precision: str = "fp32",
        home: Path | None = None,
        requested_device: str | None = None,
    ) -> None:
        self.spec = spec
        self.device = device
        self.dim = dim
        self._model = model
        size = model.visual.preprocess_cfg["size"]  # what open_clip's own transform resizes to
        self.image_size: int = size if isinstance(size, int) else int(size[0])
        self._transform = fast_preprocess(transform) or transform
        # Read now: once the tower runs in another mode, the fp32 one is gone (see _use).
        self._per_image_bytes = calibrate.per_image_bytes(model.visual, self.image_size)
        self._tokenizer = tokenizer
        if precision not in PRECISIONS:
            raise ModelLoadError(f"Unknown precision '{precision}'; use one of {', '.join(PRECISIONS)}.")
        check_precision(precision, device.type)
        self.precision = precision  # asked for; `mode` is what runs once the image tower is first used
        self.mode: str | None = None
        self.choice: Choice | None = None
        self.notices: list[str] = []  # one-line news for the user (a calibration that just ran)
        self._home = home
        self._requested_device = requested_device  # None: the fastest present (part of the choice's key)
        self._tower: calibrate.Tower | None = None
        self._tower_lock = threading.Lock()

    def preprocess(self, image: PIL.Image.Image) -> torch.Tensor:
        """open_clip's eval transform for this model: (3, image_size, image_size) float32."""
        return torch.as_tensor(self._transform(image))

    def encode_images(self, batch: torch.Tensor | np.ndarray) -> Vectors:
        """(n, 3, H, W) preprocessed images -> (n, dim) unit vectors."""
        if len(batch) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        batch = torch.as_tensor(batch).to(self.device)
        with self._tower_lock:  # not in inference mode: settling may export the tower to ONNX
            features = self._settle(batch) if self._tower is None else None
        if features is None:
            assert self._tower is not None
            with torch.inference_mode():
                features = self._tower(batch)
        return _unit_rows(torch.nn.functional.normalize(features.float(), dim=-1))

    def batch_size_for(self, requested: int = 32) -> int:
        """Photos per model batch for this model where it runs: `requested` on a CPU; on a GPU as
        many as fill it (up to 256, by the memory free now: clipfind.embedding.runtime.batch_size_for)."""
        return batch_size_for(self.device.type, requested=requested, free_bytes=calibrate.gpu_free_bytes(self.device),
                              per_image_bytes=self._per_image_bytes)

    def encode_texts(self, texts: Sequence[str]) -> Vectors:
        """Queries -> (n, dim) unit vectors in the same space as the images."""
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        tokenizer = self._tokenizer
        if isinstance(tokenizer, open_clip.tokenizer.SimpleTokenizer) and tokenizer.reduction_fn is None:
            for text in texts:  # it cuts a long query to its context without a word
                if len(tokenizer.encode(text)) + 2 > tokenizer.context_length:
                    warn_cut(text, tokenizer.context_length)
        elif _is_plain_hf(tokenizer):
            for text in texts:  # so does open_clip's HFTokenizer
                if len(tokenizer.tokenizer(tokenizer.clean_fn(text)).input_ids) > tokenizer.context_length:
                    warn_cut(text, tokenizer.context_length)
        tokens = tokenizer(list(texts)).to(self.device)
        with torch.inference_mode():
            features = self._model.encode_text(tokens, normalize=True)
        return _unit_rows(features)

    # -- how the image tower runs ---------------------------------------------------------------
    def _settle(self, batch: torch.Tensor) -> torch.Tensor | None:
        """Settle how the image tower runs: as asked, as measured before on this machine, or by
        measuring now on `batch` (the user's own photos). Returns `batch`'s features when computing
        them was part of the work, else None."""
        visual = self._model.visual
        folder = self._home if self._home is not None else Path(tempfile.gettempdir()) / "clipfind"
        exported = onnx_path(folder, self.spec)
        if self.precision != "auto":
            try:
                tower = self._tower_for(self.precision, visual, exported)
            except Exception as exc:
                raise ModelLoadError(
                    f"The image encoder cannot run in {self.precision} here ({one_line(exc)}); use --precision auto."
                ) from exc
            self._use(self.precision, tower, exported)
            return None
        key = machine_key(self.spec, self._requested_device, calibrate.device_label(self.device))
        cached = load_choice(self._home, key) if self._home else None
        if cached is not None:
            with contextlib.suppress(Exception):  # e.g. onnxruntime uninstalled since: measure again
                self._use(cached.mode, self._tower_for(cached.mode, visual, exported), exported)
                self.choice = cached
                return None
        if len(batch) < calibrate.CALIBRATION_MIN_IMAGES:
            with torch.inference_mode():  # too few photos to measure on: fp32 now, decide on a fuller batch
                return visual(batch)
        choice, reference, tower = calibrate.calibrate(visual, batch, self.device, exported)
        self.choice = choice
        self._use(choice.mode, tower, exported)
        if self._home is not None:
            save_choice(self._home, key, choice)
        self.notices.append(f"measured once on this machine: {choice.summary()}")
        return reference

    def _tower_for(self, mode: str, visual: torch.nn.Module, exported: Path) -> calibrate.Tower:
        """The tower for `mode`, not measured now. A torch mode is made of the fp32 tower itself
        (calibrate.build_tower_in_place), which _use lets go of anyway: the weights are never held
        in two types at once (a bf16 copy beside the fp32 tower took ViT-B-32's process to 1.59 GB).
        A failure leaves it as it was (the first Linear layer or tensor raises)."""
        if mode in ("bf16", "fp16", "int8"):
            return calibrate.build_tower_in_place(mode, visual)
        return calibrate.build_tower(mode, visual, self.device, exported)

    def run_in_fp32(self) -> None:
        """Run the image tower in fp32 in this process, measuring and recording nothing: what a first
        run falls back to when measuring in child processes failed (clipfind.embedding.first_run)."""
        with self._tower_lock:
            if self._tower is None:
                self._tower, self.mode = self._model.visual, "fp32"

    def _export_text(self, release: Callable[[], None] | None = None) -> None:
        """Export the text tower too, so a text search can run without torch; kept only if its
        vectors match torch's within the same tolerance as the image tower's. `release`, if given,
        is called between the export and that check: a process that needs the torch model no more
        lets it go there, so that the exported tower never sits beside it
        (clipfind.embedding.torch_worker)."""
        assert self._home is not None
        tokenizer = self._tokenizer
        path = onnx_path(self._home, self.spec, "text")
        torch_free: Callable[[], Callable[[list[str]], np.ndarray]]
        if (isinstance(tokenizer, open_clip.tokenizer.SimpleTokenizer) and tokenizer.reduction_fn is None
                and tokenizer.clean_fn is open_clip.tokenizer.get_clean_fn("lower") and tokenizer.context_length):
            merges = path.parent / Path(open_clip.tokenizer.default_bpe()).name
            info: dict[str, Any] = {"merges": merges.name, "context_length": tokenizer.context_length}

            def torch_free() -> Callable[[list[str]], np.ndarray]:
                with atomic_write(merges) as tmp:
                    shutil.copyfile(open_clip.tokenizer.default_bpe(), tmp)
                return BpeTokenizer(merges, tokenizer.context_length)
        elif _is_plain_hf(tokenizer):
            # The tokenizer transformers built (it may differ from the hub's file: see hf_tokenizer).
            saved = path.with_name(path.stem + "." + TOKENIZER_FILE)
            pad_id = int(tokenizer.tokenizer.pad_token_id)
            info = {"hf_tokenizer": saved.name, "context_length": tokenizer.context_length, "pad_id": pad_id}

            def torch_free() -> Callable[[list[str]], np.ndarray]:
                with atomic_write(saved) as tmp:
                    tokenizer.tokenizer.backend_tokenizer.save(str(tmp))
                return HfTokenizer(saved, tokenizer.context_length, pad_id)
        else:
            return  # a tokenizer clipfind.embedding does not reproduce
        try:
            tokens = tokenizer(list(FIDELITY_QUERIES))
            expected = self.encode_texts(FIDELITY_QUERIES)
            calibrate.export_onnx(calibrate.TextTower(self._model).eval(), tokens[:2], path, "tokens")
            if release is not None:
                release()
            check = OnnxTextEncoder(path, self.dim, torch_free())
            if float((check.encode_texts(FIDELITY_QUERIES) * expected).sum(1).min()) < calibrate.FIDELITY:
                path.unlink()
                return
            save_export_info(path, self.spec, self.dim, **info)
        except Exception:  # the torch text tower keeps answering; nothing is lost but start-up time
            with contextlib.suppress(OSError):
                path.unlink()

    def _use(self, mode: str, tower: calibrate.Tower, exported: Path) -> None:
        self._tower = tower
        self.mode = mode
        if mode in ONNX_MODES and isinstance(self._transform, FastPreprocess) and self._home is not None:
            # Later indexing runs can then use the export without importing torch (clipfind.embedding.onnx).
            with contextlib.suppress(OSError):
                save_export_info(exported, self.spec, self.dim, preprocess=self._transform.to_dict())
            self._export_text()
        if mode != "fp32":
            # The fp32 tower is no longer needed: keeping it would hold a second copy of the weights.
            self._model.visual = torch.nn.Identity()
            calibrate.release_memory()  # what it held, given back before the tower runs


def _is_plain_hf(tokenizer: object) -> bool:
    """open_clip's HFTokenizer in the setting clipfind.embedding.hf_tokenizer reproduces."""
    return (isinstance(tokenizer, open_clip.tokenizer.HFTokenizer) and not tokenizer.tokenizer_mode
            and not tokenizer.strip_sep_token and tokenizer.clean_fn is open_clip.tokenizer.get_clean_fn("whitespace")
            and bool(tokenizer.context_length) and tokenizer.tokenizer.pad_token_id is not None
            and hasattr(tokenizer.tokenizer, "backend_tokenizer"))


def _unit_rows(features: torch.Tensor) -> Vectors:
    """open_clip's normalised features as the float32 numpy rows the catalog and index store."""
    return features.float().cpu().numpy()


def _check_spec(spec: ModelSpec) -> None:
    """Refuse unknown names, tags and missing files before anything heavy happens."""
    if spec.is_hub_repo:
        return
    if open_clip.get_model_config(spec.name) is None:
        raise unknown_model(spec.name)
    if spec.pretrained is None:
        return
    if spec.is_file:
        path = os.path.expanduser(spec.pretrained)
        if not os.path.isfile(path):
            raise ModelLoadError(f"Checkpoint file not found: {path}")
        return
    if not open_clip.is_pretrained_cfg(spec.name, spec.pretrained):
        tags = open_clip.list_pretrained_tags_by_model(spec.name)
        if not tags:
            raise ModelLoadError(
                f"{spec.name} has no published weights in open_clip; pass a checkpoint file with --pretrained PATH."
            )
        raise ModelLoadError(
            f"Unknown --pretrained '{spec.pretrained}' for {spec.name}. Valid tags: {', '.join(tags)} "
            "(or a checkpoint file path)."
        )


def _load_failure(spec: ModelSpec, weights: str | None, e: Exception) -> ModelLoadError:
    """Name the file at fault: after _check_spec and fetch, what is left to fail is the weights."""
    if spec.is_file:
        path = os.path.expanduser(spec.pretrained or "")
        if isinstance(e, RuntimeError) and "state_dict" in str(e):
            return ModelLoadError(
                f"Checkpoint file {path} does not match the {spec.name} architecture ({one_line(e)}); "
                "pass weights made for this model."
            )
        return ModelLoadError(
            f"Checkpoint file {path} could not be read: it is corrupt or not an open_clip checkpoint ({one_line(e)})."
        )
    if weights:
        return ModelLoadError(
            f"Could not load {what(spec)} from {weights} ({one_line(e)}); delete that file to download it again."
        )
    return ModelLoadError(f"Could not load {spec.name}: {one_line(e)}")


def _model_config(spec: ModelSpec, config_path: str | None) -> dict[str, Any]:
    """The architecture's open_clip config: the hub repo's, or open_clip's own."""
    if config_path:
        with open(config_path, encoding="utf-8") as f:
            return dict(json.load(f)["model_cfg"])
    return dict(open_clip.get_model_config(spec.name))


def _needs_transformers(model_cfg: dict[str, Any]) -> bool:
    text_cfg = model_cfg.get("text_cfg", {})
    return bool(text_cfg.get("hf_model_name") or text_cfg.get("hf_tokenizer_name"))


@contextmanager
def _seeded_if_random(spec: ModelSpec) -> Iterator[None]:
    """Random weights are the same in every process, so vectors stored by one run match the next."""
    if spec.pretrained is not None or spec.is_hub_repo:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        yield


def load_model(
    spec: ModelSpec,
    device: str | None = None,
    progress: DownloadProgressFn | None = None,
    *,
    precision: str = "auto",
    home: Path | None = None,
) -> ClipModel:
    """Load `spec` on `device` (default: the fastest present), downloading weights once if needed.

    `progress` gets (bytes_done, bytes_total) while the weights download; without it
    huggingface_hub draws its usual tqdm bar on stderr. Every failure is a ModelLoadError whose
    one-line message says what to do. `precision` picks how the image tower runs (see
    clipfind.embedding.calibrate); in "auto" the measured choice is cached in `home`.
    """
    torch_device = pick_device(device)
    check_precision(precision, torch_device.type)  # before any download
    if spec.name == TINY_MODEL:
        register_tiny_model()
    _check_spec(spec)
    warn_if_random(spec)
    hub = hub_weights(spec)
    config_path = fetch(spec, HubFile(hub.repo, (HF_CONFIG_NAME,)), quiet) if spec.is_hub_repo and hub else None
    model_cfg = _model_config(spec, config_path)
    if _needs_transformers(model_cfg):
        if open_clip.hf_model.transformers is None:  # what open_clip checks before it fails deep inside
            raise missing_extra(f"{spec.name} (its text tower is a Hugging Face model)", "transformers")
        for text_file in hub_text_files(model_cfg.get("text_cfg", {})):  # before the weights: they are small
            fetch(spec, text_file, progress if text_file.candidates == (TOKENIZER_FILE,) else quiet, text_file=True)
    weights = fetch(spec, hub, progress) if hub else None
    tag = open_clip.get_pretrained_cfg(spec.name, spec.pretrained or "") if not spec.is_file else {}
    try:
        with hub_offline(), _seeded_if_random(spec):
            model, _, transform = open_clip.create_model_and_transforms(
                spec.name,
                pretrained=spec.pretrained,
                device=torch_device,
                # open_clip 3 only warns when a tag was trained with QuickGELU (e.g. ViT-B-32/openai)
                # and the architecture lacks it; the vectors would be off, so match the tag.
                force_quick_gelu=bool(tag.get("quick_gelu", False)),
            )
            tokenizer = open_clip.get_tokenizer(spec.name)
    except Exception as e:  # open_clip raises RuntimeError, OSError, ValueError, safetensors and pickle errors
        raise _load_failure(spec, weights, e) from e
    model.eval()
    if "MobileCLIP" in spec.name:
        from timm.utils import reparameterize_model

        # MobileCLIP's FastViT blocks have training-time branches; fusing them is much faster and equivalent.
        model = reparameterize_model(model, inplace=True)
    dim = int(model_cfg["embed_dim"])
    if torch_device.type == "cpu":
        configure_cpu_threads()  # the same thread count that ONNX Runtime gets
    return ClipModel(
        spec, torch_device, model, transform, tokenizer, dim, precision=precision, home=home, requested_device=device
    )
