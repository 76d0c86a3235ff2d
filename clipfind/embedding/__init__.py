"""The embedding stage: a model turns photos and queries into unit vectors.

The package has a light part and a torch part, and the boundary is kept by a test
(tests/embedding/test_torch_boundary.py):

Light (never imports torch or open_clip at import time; a process that runs the model through
ONNX Runtime, or never runs it, stays free of their seconds of start-up and ~750 MB):
    spec        ModelSpec (which model and weights), modes, model-name checks, clipfind's configs
    table       the supported models as data (`clipfind models`, the README's table)
    encoder     ImageEncoder: what the indexer needs from an image encoder
    preprocess  open_clip's eval transform in Pillow and numpy (FastPreprocess)
    tokenizer   CLIP's BPE tokenizer in numpy (BpeTokenizer)
    hf_tokenizer  open_clip's HFTokenizer (XLM-R, the multilingual model) through `tokenizers`, no
                torch or transformers (HfTokenizer); the `multilingual` extra
    runtime     this machine (cores, CPU flags, whether a CUDA GPU is likely) and the recorded choice
                of how it runs a model, keyed by the device that runs it; where the exported towers
                live; the batch size and decode workers that keep a GPU fed
    onnx        the exported towers through ONNX Runtime (OnnxImageEncoder, OnnxTextEncoder)
    selection   which measured mode is kept (the rules calibrate and first_run share)
    quantise    ONNX Runtime's int8 quantisation of an export, with one copy of the weights
    first_run   the image encoder of a first run: the measuring done in child processes, so the
                indexing process never holds torch meanwhile (FirstRunEncoder)
    worker_protocol  the pipe between that process and its children (JSON lines)
    onnx_worker  the child that measures ONNX Runtime's modes (and quantises), without torch

Torch (imports torch and open_clip; load these only to run the model with torch):
    torch_model  ClipModel and load_model: open_clip's model on a torch device
    download     the weights from the Hugging Face Hub into its cache, with byte progress
    calibrate    each way to run the image tower measured on this machine; ONNX export
    torch_worker  the child of a first run that holds one tower in torch: measures the torch
                modes and exports the towers (clipfind.embedding.first_run)

Where the old flat modules went:
    clipfind.modelspec    -> clipfind.embedding.spec
    clipfind.model_table  -> clipfind.embedding.table
    clipfind.text_tokens  -> clipfind.embedding.tokenizer
    clipfind.preprocess   -> clipfind.embedding.preprocess
    clipfind.encoders     -> clipfind.embedding.runtime (ImageEncoder -> encoder; model-name
                             checks, warn_if_random and the configs folder -> spec)
    clipfind.onnx_encoder -> clipfind.embedding.onnx (save_sidecar -> save_export_info,
                             SIDECAR_SUFFIX -> EXPORT_INFO_SUFFIX)
    clipfind.runtime      -> clipfind.embedding.calibrate
    clipfind.model        -> clipfind.embedding.torch_model, and clipfind.embedding.download
                             (ProgressFn -> DownloadProgressFn); TINY_MODEL -> spec

This __init__ imports nothing, so importing any light module stays light.
"""

LIGHT_MODULES = ("spec", "table", "encoder", "preprocess", "tokenizer", "hf_tokenizer", "runtime", "onnx",
                 "selection", "quantise", "first_run", "worker_protocol", "onnx_worker")
TORCH_MODULES = ("torch_model", "download", "calibrate", "torch_worker")
