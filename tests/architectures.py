"""The matrix: tiny random-weight causal LMs of the architectures users run, built at test time from transformers'
own config classes (no download), each under SmolLM2's tokenizer (the embedded model's, converted), plus three that
stress the tokenizer and the output rows: a Llama and a Qwen2 under a SentencePiece-style tokenizer (Metaspace, byte
fallback, a BOS the tokenizer adds) trained here with ``tokenizers`` on the seed document, and a Qwen2 whose output
layer has more rows than its tokenizer has tokens (the padding rows out of reach, as a trained model's are).

Seeded: the same weights on every machine and run."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

SEED_DOCUMENT = Path(__file__).resolve().parents[2] / "shared" / "seed" / "intro-to-language-models.txt"
LAYERS = 2
HIDDEN = 64
HEADS = 4
KV_HEADS = 2
CONTEXT = 2048  # the few-shot prompts are ~170 tokens, the Boston conversation ~40 more generated
PADDED_ROWS = 49536  # a multiple of 128 above SmolLM2's 49,152 tokens, as a padded vocabulary often is

# The same numbers for every architecture, in each config class's own words.
COMMON: dict[str, Any] = {
    "hidden_size": HIDDEN,
    "intermediate_size": 2 * HIDDEN,
    "num_hidden_layers": LAYERS,
    "num_attention_heads": HEADS,
    "num_key_value_heads": KV_HEADS,
    "max_position_embeddings": CONTEXT,
    "initializer_range": 0.5,  # spread-out logits: random weights at 0.02 make every candidate a near tie
    "tie_word_embeddings": True,
}


def _config(name: str, vocab: int, special: dict[str, int]) -> Any:
    import transformers as t

    common = {**COMMON, "vocab_size": vocab, **special}
    if name == "gpt2":
        return t.GPT2Config(
            vocab_size=vocab, n_embd=HIDDEN, n_layer=LAYERS, n_head=HEADS, n_positions=CONTEXT,
            initializer_range=0.5, **special,
        )  # fmt: skip
    if name == "gpt_neox":
        return t.GPTNeoXConfig(**{**common, "tie_word_embeddings": False}, rotary_pct=0.5)
    if name == "phi3":
        return t.Phi3Config(**{**common, "tie_word_embeddings": False})
    # Gemma scales its embeddings by sqrt(hidden size): tied, the scaled input embedding outweighs the rest of the
    # residual stream and the head reads the token just read back out (a random Gemma then repeats its last token,
    # whatever came before it). Its head is its own.
    gemma = {**common, "tie_word_embeddings": False}
    if name == "gemma2":
        return t.Gemma2Config(**gemma, head_dim=HIDDEN // HEADS, query_pre_attn_scalar=HIDDEN // HEADS)
    if name == "gemma3_text":
        return t.Gemma3TextConfig(**gemma, head_dim=HIDDEN // HEADS, query_pre_attn_scalar=HIDDEN // HEADS)
    classes = {
        "llama": t.LlamaConfig,
        "mistral": t.MistralConfig,
        "qwen2": t.Qwen2Config,
        "qwen3": t.Qwen3Config,
        "olmo2": t.Olmo2Config,
        "granite": t.GraniteConfig,
    }
    return classes[name](**common)


def smollm2_tokenizer(embedded_folder: Path, folder: Path) -> tuple[int, dict[str, int]]:
    """SmolLM2's tokenizer files (from the converted embedded model) into ``folder``: its size and special ids."""
    import json

    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        if (embedded_folder / name).is_file():
            shutil.copy(embedded_folder / name, folder / name)
    config = json.loads((embedded_folder / "config.json").read_text())
    special = {k: int(config[k]) for k in ("bos_token_id", "eos_token_id", "pad_token_id")}
    return int(config["vocab_size"]), special


def sentencepiece_tokenizer(folder: Path, size: int = 1000) -> tuple[int, dict[str, int]]:
    """A SentencePiece-style tokenizer trained on the seed document: Metaspace ('▁' for a space, one prepended),
    byte fallback (a character it never saw is read as its UTF-8 bytes, <0x..>), and <s> opening every text."""
    from tokenizers import Tokenizer, decoders, models, normalizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    raw.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    raw.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    byte_tokens = [f"<0x{b:02X}>" for b in range(256)]
    trainer = trainers.BpeTrainer(
        vocab_size=size, special_tokens=["<unk>", "<s>", "</s>", *byte_tokens], show_progress=False
    )
    raw.train_from_iterator(SEED_DOCUMENT.read_text(encoding="utf-8").splitlines(), trainer)
    bos, eos = raw.token_to_id("<s>"), raw.token_to_id("</s>")
    raw.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", bos)])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="</s>"
    )
    tokenizer.save_pretrained(folder)
    return raw.get_vocab_size(), {"bos_token_id": bos, "eos_token_id": eos, "pad_token_id": eos}


def build(name: str, folder: Path, embedded_folder: Path, *, seed: int = 0) -> Path:
    """One model of the matrix, saved with ``save_pretrained`` into ``folder`` (made once: an existing one is kept)."""
    import torch
    from transformers import AutoModelForCausalLM

    if (folder / "config.json").is_file():
        return folder
    building = folder.with_name(folder.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    architecture, _, tokenizer = name.partition("+")
    if tokenizer == "sentencepiece":
        size, special = sentencepiece_tokenizer(building)
    else:
        size, special = smollm2_tokenizer(embedded_folder, building)
    rows = PADDED_ROWS if tokenizer == "padded" else size
    config = _config(architecture, rows, special)
    if rows > size:  # the output rows apart from the input embeddings, whose padding rows stay as initialised
        config.tie_word_embeddings = False
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    if rows > size:
        _out_of_reach(model, size)
    model.save_pretrained(building)
    building.rename(folder)
    return folder


def _out_of_reach(model: Any, size: int) -> None:
    """Padding rows a trained model never predicts: output weights of zero, a logit of 0 where the real tokens'
    spread far above it (never among the top 50 here), as rows that were never a target learn to lose."""
    import torch

    with torch.no_grad():
        model.get_output_embeddings().weight[size:] = 0.0


# The matrix: name -> what it is. The first ten share SmolLM2's tokenizer.
MODELS: dict[str, str] = {
    "llama": "Llama",
    "mistral": "Mistral",
    "qwen2": "Qwen2",
    "qwen3": "Qwen3",
    "gemma2": "Gemma 2 (refuses SDPA: eager attention)",
    "gemma3_text": "Gemma 3, text",
    "phi3": "Phi-3",
    "gpt2": "GPT-2 (absolute positions)",
    "gpt_neox": "GPT-NeoX",
    "olmo2": "OLMo 2",
    "granite": "Granite",
    "llama+sentencepiece": "Llama under a SentencePiece-style tokenizer",
    "qwen2+sentencepiece": "Qwen2 under a SentencePiece-style tokenizer",
    "qwen2+padded": f"Qwen2 with {PADDED_ROWS} output rows for 49,152 tokens",
}

Builder = Callable[[str, Path, Path], Path]
