"""The authors' CycleGAN-Turbo (GaParmar/img2img-turbo: ``src/model.py``, ``src/cyclegan_turbo.py``,
``src/train_cyclegan_turbo.py``), declared here as they wrote it: their patched VAE forwards, their LoRA configs
and module lists, their wrappers and their one-step forward, their checkpoint format. Generalised only where their
code hard-codes SD-Turbo (the skip convolutions' channels, the base's location, ``.cuda()``), so that the project's
translator and converter are tested against it on a tiny base."""

import copy

import torch
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict

L_GREP = [
    "to_k",
    "to_q",
    "to_v",
    "to_out.0",
    "conv",
    "conv1",
    "conv2",
    "conv_in",
    "conv_shortcut",
    "conv_out",
    "proj_out",
    "proj_in",
    "ff.net.2",
    "ff.net.0.proj",
]
VAE_TARGETS = [
    "conv1",
    "conv2",
    "conv_in",
    "conv_shortcut",
    "conv",
    "conv_out",
    "skip_conv_1",
    "skip_conv_2",
    "skip_conv_3",
    "skip_conv_4",
    "to_k",
    "to_q",
    "to_v",
    "to_out.0",
]


def my_vae_encoder_fwd(self, sample):
    sample = self.conv_in(sample)
    l_blocks = []
    for down_block in self.down_blocks:
        l_blocks.append(sample)
        sample = down_block(sample)
    sample = self.mid_block(sample)
    sample = self.conv_norm_out(sample)
    sample = self.conv_act(sample)
    sample = self.conv_out(sample)
    self.current_down_blocks = l_blocks
    return sample


def my_vae_decoder_fwd(self, sample, latent_embeds=None):
    sample = self.conv_in(sample)
    upscale_dtype = next(iter(self.up_blocks.parameters())).dtype
    sample = self.mid_block(sample, latent_embeds)
    sample = sample.to(upscale_dtype)
    skip_convs = [getattr(self, f"skip_conv_{i + 1}") for i in range(len(self.up_blocks))]
    for idx, up_block in enumerate(self.up_blocks):
        skip_in = skip_convs[idx](self.incoming_skip_acts[::-1][idx] * self.gamma)
        sample = sample + skip_in
        sample = up_block(sample, latent_embeds)
    sample = self.conv_norm_out(sample)
    sample = self.conv_act(sample)
    sample = self.conv_out(sample)
    return sample


class VAE_encode(torch.nn.Module):
    def __init__(self, vae, vae_b2a=None):
        super().__init__()
        self.vae = vae
        self.vae_b2a = vae_b2a

    def forward(self, x, direction, posterior="sample"):
        _vae = self.vae if direction == "a2b" else self.vae_b2a
        dist = _vae.encode(x).latent_dist
        return (dist.sample() if posterior == "sample" else dist.mode()) * _vae.config.scaling_factor


class VAE_decode(torch.nn.Module):
    def __init__(self, vae, vae_b2a=None):
        super().__init__()
        self.vae = vae
        self.vae_b2a = vae_b2a

    def forward(self, x, direction):
        _vae = self.vae if direction == "a2b" else self.vae_b2a
        _vae.decoder.incoming_skip_acts = _vae.encoder.current_down_blocks
        return (_vae.decode(x / _vae.config.scaling_factor).sample).clamp(-1, 1)


def _skip_convs(vae):
    blocks = list(vae.config.block_out_channels)
    down = [blocks[0], *blocks[:-1]][::-1]
    up = [blocks[::-1][0], *blocks[::-1][:-1]]
    for i, (cin, cout) in enumerate(zip(down, up), start=1):
        conv = torch.nn.Conv2d(cin, cout, kernel_size=(1, 1), stride=(1, 1), bias=False)
        torch.nn.init.constant_(conv.weight, 1e-5)
        setattr(vae.decoder, f"skip_conv_{i}", conv)


def _patched_vae(base):
    vae = AutoencoderKL.from_pretrained(base, subfolder="vae")
    vae.encoder.forward = my_vae_encoder_fwd.__get__(vae.encoder, vae.encoder.__class__)
    vae.decoder.forward = my_vae_decoder_fwd.__get__(vae.decoder, vae.decoder.__class__)
    _skip_convs(vae)
    vae.decoder.ignore_skip = False
    return vae


def unet_module_lists(unet):
    enc, dec, others = [], [], []
    for n, _p in unet.named_parameters():
        if "bias" in n or "norm" in n:
            continue
        for pattern in L_GREP:
            if pattern in n and ("down_blocks" in n or "conv_in" in n):
                enc.append(n.replace(".weight", ""))
                break
            elif pattern in n and "up_blocks" in n:
                dec.append(n.replace(".weight", ""))
                break
            elif pattern in n:
                others.append(n.replace(".weight", ""))
                break
    return enc, dec, others


def make_checkpoint(base, rank_unet=4, rank_vae=4, seed=0) -> dict:
    """A ``model_N.pkl`` dict as their training script saves it, with random (non-zero) adapters and skips."""
    torch.manual_seed(seed)
    unet = UNet2DConditionModel.from_pretrained(base, subfolder="unet")
    enc, dec, others = unet_module_lists(unet)
    for name, targets in (("default_encoder", enc), ("default_decoder", dec), ("default_others", others)):
        unet.add_adapter(LoraConfig(r=rank_unet, init_lora_weights="gaussian", target_modules=targets), name)
    vae = _patched_vae(base)
    vae.add_adapter(LoraConfig(r=rank_vae, init_lora_weights="gaussian", target_modules=VAE_TARGETS), "vae_skip")
    vae.decoder.gamma = 1
    vae_b2a = copy.deepcopy(vae)
    with torch.no_grad():
        for net in (unet, vae, vae_b2a):
            for n, p in net.named_parameters():
                if "lora" in n or "skip_conv" in n:
                    p.copy_(torch.randn_like(p) * 0.05)
    vae_enc, vae_dec = VAE_encode(vae, vae_b2a), VAE_decode(vae, vae_b2a)
    return {
        "l_target_modules_encoder": enc,
        "l_target_modules_decoder": dec,
        "l_modules_others": others,
        "rank_unet": rank_unet,
        "sd_encoder": get_peft_model_state_dict(unet, adapter_name="default_encoder"),
        "sd_decoder": get_peft_model_state_dict(unet, adapter_name="default_decoder"),
        "sd_other": get_peft_model_state_dict(unet, adapter_name="default_others"),
        "rank_vae": rank_vae,
        "vae_lora_target_modules": VAE_TARGETS,
        "sd_vae_enc": vae_enc.state_dict(),
        "sd_vae_dec": vae_dec.state_dict(),
    }


class AuthorsTurbo(torch.nn.Module):
    """``CycleGAN_Turbo`` loading a checkpoint dict (``load_ckpt_from_state_dict``) on a base folder."""

    def __init__(self, base, sd):
        super().__init__()
        self.sched = DDPMScheduler.from_pretrained(base, subfolder="scheduler")
        self.sched.set_timesteps(1)
        unet = UNet2DConditionModel.from_pretrained(base, subfolder="unet")
        vae = _patched_vae(base)
        for adapter, _key, targets in (
            ("default_encoder", "sd_encoder", "l_target_modules_encoder"),
            ("default_decoder", "sd_decoder", "l_target_modules_decoder"),
            ("default_others", "sd_other", "l_modules_others"),
        ):
            conf = LoraConfig(
                r=sd["rank_unet"], init_lora_weights="gaussian", target_modules=sd[targets], lora_alpha=sd["rank_unet"]
            )
            unet.add_adapter(conf, adapter_name=adapter)
        for adapter, key in (
            ("default_encoder", "sd_encoder"),
            ("default_decoder", "sd_decoder"),
            ("default_others", "sd_other"),
        ):
            for n, p in unet.named_parameters():
                name_sd = n.replace(f".{adapter}.weight", ".weight")
                if "lora" in n and adapter in n:
                    p.data.copy_(sd[key][name_sd])
        unet.set_adapter(["default_encoder", "default_decoder", "default_others"])
        vae_lora_config = LoraConfig(
            r=sd["rank_vae"], init_lora_weights="gaussian", target_modules=sd["vae_lora_target_modules"]
        )
        vae.add_adapter(vae_lora_config, adapter_name="vae_skip")
        vae.decoder.gamma = 1
        vae_b2a = copy.deepcopy(vae)
        self.vae_enc = VAE_encode(vae, vae_b2a=vae_b2a)
        self.vae_enc.load_state_dict(sd["sd_vae_enc"])
        self.vae_dec = VAE_decode(vae, vae_b2a=vae_b2a)
        self.vae_dec.load_state_dict(sd["sd_vae_dec"])
        self.unet = unet
        self.timesteps = torch.tensor([999]).long()

    @torch.no_grad()
    def forward(self, x, direction, text_emb, posterior="sample"):
        """``forward_with_networks``: encode, one UNet step, ``sched.step`` per image, decode."""
        timesteps = self.timesteps.repeat(x.shape[0])
        x_enc = self.vae_enc(x, direction=direction, posterior=posterior).to(x.dtype)
        model_pred = self.unet(x_enc, timesteps, encoder_hidden_states=text_emb).sample
        x_out = torch.stack(
            [
                self.sched.step(model_pred[i], timesteps[i], x_enc[i], return_dict=True).prev_sample
                for i in range(x.shape[0])
            ]
        )
        return self.vae_dec(x_out, direction=direction)


def caption_embedding(base, caption):
    """Their caption encoding: tokenized to the tokenizer's maximum length, ``text_encoder(ids)[0]``."""
    from transformers import AutoTokenizer, CLIPTextModel

    tokenizer = AutoTokenizer.from_pretrained(base, subfolder="tokenizer")
    text_encoder = CLIPTextModel.from_pretrained(base, subfolder="text_encoder")
    ids = tokenizer(
        caption, max_length=tokenizer.model_max_length, padding="max_length", truncation=True, return_tensors="pt"
    ).input_ids
    with torch.no_grad():
        return text_encoder(ids)[0]
