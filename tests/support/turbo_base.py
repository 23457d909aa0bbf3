"""A tiny base model in diffusers' layout (unet/, vae/, scheduler/, text_encoder/, tokenizer/), built from configs:
SD-Turbo's component classes and structure at a few thousand parameters, so the one-step family is tested on CPU
in seconds without downloading anything."""

from pathlib import Path

import torch

CAPTION_WIDTH = 32


def tiny_unet():
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        block_out_channels=(16, 32),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=CAPTION_WIDTH,
        attention_head_dim=4,
        norm_num_groups=8,
    )


def tiny_vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(8, 16, 16),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=4,
        sample_size=32,
        scaling_factor=0.18215,
    )


def tiny_text_encoder(folder: Path):
    """A CLIP text encoder and a byte-level BPE tokenizer whose vocabulary is the bytes themselves."""
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    vocab.update({c: len(vocab) + i for i, c in enumerate(letters)})
    vocab.update({c + "</w>": len(vocab) + i for i, c in enumerate(letters)})
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)
    tokenizer.save_pretrained(folder / "tokenizer")
    config = CLIPTextConfig(
        vocab_size=len(vocab),
        hidden_size=CAPTION_WIDTH,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=77,
        bos_token_id=vocab["<|startoftext|>"],
        eos_token_id=vocab["<|endoftext|>"],
        pad_token_id=vocab["<|endoftext|>"],
    )
    CLIPTextModel(config).save_pretrained(folder / "text_encoder")


def make_base(folder: Path, seed: int = 0, text_encoder: bool = True) -> Path:
    """Write the tiny base to ``folder`` and return it."""
    from diffusers import DDPMScheduler

    torch.manual_seed(seed)
    tiny_unet().save_pretrained(folder / "unet")
    tiny_vae().save_pretrained(folder / "vae")
    # SD-Turbo's scheduler settings (its scheduler_config.json, read as DDPM by the authors' code).
    DDPMScheduler(
        beta_schedule="scaled_linear",
        beta_start=0.00085,
        beta_end=0.012,
        num_train_timesteps=1000,
        clip_sample=False,
        timestep_spacing="trailing",
        prediction_type="epsilon",
    ).save_pretrained(folder / "scheduler")
    if text_encoder:
        tiny_text_encoder(folder)
    return folder


def tiny_clip(layers: int = 12, seed: int = 0):
    """A CLIP image encoder of ViT-B/32's shape in miniature (random weights): 16 patches, width 32, ``layers``
    blocks (12, as ViT-B/32, puts the vision-aided critic's taps after blocks 4 and 8)."""
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    config = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=layers,
        num_attention_heads=4,
        image_size=32,
        patch_size=8,
        projection_dim=16,
    )
    torch.manual_seed(seed)
    return CLIPVisionModelWithProjection(config)
