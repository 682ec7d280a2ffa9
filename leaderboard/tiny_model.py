"""Build a tiny random-initialised Llama-style model with a locally trained tokenizer.

For demos and tests: it takes about a second, needs no network, and gives a folder that
transformers (and so lm-eval) loads like any Hugging Face model directory.
"""

from __future__ import annotations

import json
from pathlib import Path

# Enough text for a byte-level BPE to learn English, digits, code-ish punctuation and Korean.
_TOKENIZER_CORPUS = [
    "The quick brown fox jumps over the lazy dog. Question: What is 12 + 30? Answer: 42.",
    "Which of the following is a renewable source of energy? A. coal B. wind C. oil D. gas",
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many in May.",
    "The man put the milk in the fridge because it was hot outside. Option1: milk Option2: fridge",
    "Science, history, mathematics, law, medicine, biology, chemistry, physics and economics.",
    "대한민국의 수도는 서울이다. 질문: 다음 중 옳은 것은? 답변: 정답은 2번입니다.",
    "한국어 문장도 토크나이저가 바이트 단위로 처리할 수 있어야 한다. 모델 평가 리더보드.",
    "def add(a, b):\n    return a + b\n# 0 1 2 3 4 5 6 7 8 9 ( ) [ ] { } < > = + - * / % $ # @ !",
]


def build_tiny_model(
    output_dir: Path | str,
    *,
    seed: int = 0,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    vocab_size: int = 512,
    max_positions: int = 4096,
    license: str = "apache-2.0",
) -> Path:
    """Write a random-initialised LlamaForCausalLM and its tokenizer to ``output_dir``.

    Args:
        output_dir: folder to create (or overwrite) with config, weights and tokenizer.
        seed: torch seed, so the same arguments give the same weights.
        max_positions: long enough for 25-shot ARC prompts without truncation surprises.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)

    tokenizer_model = Tokenizer(models.BPE(unk_token=None))
    tokenizer_model.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer_model.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<unk>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer_model.train_from_iterator(_TOKENIZER_CORPUS * 4, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer_model,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="</s>",
        model_max_length=max_positions,
    )

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=max_positions,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config)
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    # A model card header, like a hub repo has, so the license is read from the files.
    (output_dir / "README.md").write_text(
        f"---\nlicense: {license}\n---\n# Tiny random Llama (seed {seed})\n", encoding="utf-8"
    )
    (output_dir / "tiny_model.json").write_text(
        json.dumps({"seed": seed, "hidden_size": hidden_size}), encoding="utf-8"
    )
    return output_dir
